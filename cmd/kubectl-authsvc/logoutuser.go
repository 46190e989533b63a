package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hiringo/auth-operator/authserver/userlogouts"
)

func newLogoutUserCommand(o *options) *cobra.Command {
	timeout := time.Minute
	cmd := &cobra.Command{
		Use:   "logout-user ID",
		Short: "End every session of a user (every token of user.id ID issued until now) and wait until the issuer applied it",
		Long: "logout-user records the request in the AuthService's NAME-user-logouts ConfigMap, where the issuer applies it as " +
			"POST /auth/logout/all does: every access and refresh token of the user issued up to then is refused. " +
			"Who may do this is who may patch that ConfigMap (RBAC).",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := o.connect(cmd.Context())
			if err != nil {
				return err
			}
			return logoutUser(cmd.Context(), cmd, t, args[0], timeout)
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", timeout, "how long to wait for the issuer to apply the request; 0 records it and does not wait")
	return cmd
}

// logoutUser adds one request to the ConfigMap and waits until an issuer marks it applied.
func logoutUser(ctx context.Context, cmd *cobra.Command, t *target, userID string, timeout time.Duration) error {
	req, err := userlogouts.New(userID, whoAmI(ctx, t.client), time.Now())
	if err != nil {
		return fmt.Errorf("logout-user: %w", err)
	}
	as, err := t.get(ctx)
	if err != nil {
		return err
	}
	name := as.UserLogoutsConfigMapName()
	key := userlogouts.NewKey(time.Now())
	// A merge patch of the new key alone: other requests, pending or applied, stay as they are.
	patch, err := json.Marshal(map[string]any{"data": map[string]string{key: req.Encode()}})
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{}
	cm.Namespace, cm.Name = t.namespace, name
	if err := t.client.Patch(ctx, cm, client.RawPatch("application/merge-patch+json", patch)); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("ConfigMap %s/%s not found: the operator creates it with the issuer; is the operator up to date and %s reconciled?", t.namespace, name, t.ref())
		}
		return fmt.Errorf("record the request in ConfigMap %s/%s (you need patch on it): %w", t.namespace, name, err)
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "logout of user %s requested in ConfigMap %s/%s (key %s)\n", userID, t.namespace, name, key)
	if timeout == 0 {
		return nil
	}
	var applied userlogouts.Request
	err = wait.PollUntilContextTimeout(ctx, pollInterval, timeout, true, func(ctx context.Context) (bool, error) {
		if err := t.client.Get(ctx, client.ObjectKeyFromObject(cm), cm); err != nil {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			return false, err
		}
		r, err := userlogouts.Parse(cm.Data[key])
		if err != nil || r.AppliedAt == nil {
			return false, nil
		}
		applied = r
		return true, nil
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("the issuer of %s has not applied request %s after %s: it stays pending and is applied once an issuer runs; see kubectl get pods -l app.kubernetes.io/name=authserver-issuer -n %s",
			t.ref(), key, timeout, t.namespace)
	}
	if err != nil {
		return fmt.Errorf("wait for the issuer to apply request %s: %w", key, err)
	}
	fmt.Fprintf(out, "applied by %s at %s: every token of user %s issued up to then is refused\n",
		orUnknown(applied.AppliedBy), applied.AppliedAt.UTC().Format(time.RFC3339), userID)
	return nil
}

// whoAmI is the caller's Kubernetes user name as the API server sees it, recorded with
// the request; empty when the API server does not say.
func whoAmI(ctx context.Context, c client.Client) string {
	review := &authenticationv1.SelfSubjectReview{}
	if err := c.Create(ctx, review); err != nil {
		return ""
	}
	return review.Status.UserInfo.Username
}

func orUnknown(s string) string {
	if s == "" {
		return "an issuer"
	}
	return s
}
