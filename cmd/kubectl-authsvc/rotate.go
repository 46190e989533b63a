package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

func newRotateCommand(o *options) *cobra.Command {
	timeout := 10 * time.Minute
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Ask the operator for a key rotation now and wait until the new key signs",
		Long: "rotate sets the " + authv1alpha1.RotateAnnotation + " annotation and waits until the operator has promoted the next key. " +
			"The operator promotes a next key only once it has been published for its --min-key-publish-time, so a rotation right after another waits that long.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := o.connect(cmd.Context())
			if err != nil {
				return err
			}
			return rotate(cmd.Context(), cmd, t, timeout)
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", timeout, "how long to wait for the new active key; 0 asks and does not wait")
	return cmd
}

// rotate requests one rotation with a fresh annotation value and waits for the operator to
// report it handled with a different active key.
func rotate(ctx context.Context, cmd *cobra.Command, t *target, timeout time.Duration) error {
	as, err := t.get(ctx)
	if err != nil {
		return err
	}
	previous := as.Status.ActiveKeyID
	request := time.Now().UTC().Format(time.RFC3339Nano)
	patch := client.MergeFrom(as.DeepCopy())
	if as.Annotations == nil {
		as.Annotations = map[string]string{}
	}
	as.Annotations[authv1alpha1.RotateAnnotation] = request
	if err := t.client.Patch(ctx, as, patch); err != nil {
		return fmt.Errorf("annotate %s: %w", t.ref(), err)
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "rotation of %s requested (%s=%s); key %s signs now\n", t.ref(), authv1alpha1.RotateAnnotation, request, orNone(previous))
	if timeout == 0 {
		return nil
	}

	last, err := t.waitFor(ctx, timeout, func(as *authv1alpha1.AuthService) bool { return rotated(as, request, previous) })
	if errors.Is(err, errWaitTimedOut) && last != nil {
		return fmt.Errorf("%s still signs with key %s after %s (next key %s): the operator promotes the next key only once it has been published for its --min-key-publish-time; see kubectl authsvc status and kubectl events --for authservice/%s",
			t.ref(), orNone(last.Status.ActiveKeyID), timeout, orNone(last.Status.NextKeyID), t.name)
	}
	if err != nil {
		return fmt.Errorf("wait for the rotation of %s: %w", t.ref(), err)
	}
	fmt.Fprintf(out, "key %s signs now; key %s is retired and verifies until its tokens expire; new next key %s\n",
		last.Status.ActiveKeyID, orNone(previous), orNone(last.Status.NextKeyID))
	return nil
}

// rotated says whether the operator has handled the rotation request and another key signs.
func rotated(as *authv1alpha1.AuthService, request, previousActive string) bool {
	return as.Status.LastRotationRequest == request && as.Status.ActiveKeyID != "" && as.Status.ActiveKeyID != previousActive
}

// orNone prints an empty kid as "(none)".
func orNone(kid string) string {
	if kid == "" {
		return "(none)"
	}
	return kid
}
