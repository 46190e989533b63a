package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

func newRevokeCommand(o *options) *cobra.Command {
	var yes bool
	timeout := 2 * time.Minute
	cmd := &cobra.Command{
		Use:   "revoke KID",
		Short: "Revoke a compromised signing key: show what it affects, and with --yes add it to spec.signingKeys.revokedKeyIDs",
		Long: "revoke shows which key would be revoked, its state, how many keys stay published and how many auth-server replicas refuse its tokens. " +
			"With --yes it adds the kid to spec.signingKeys.revokedKeyIDs and waits until the operator no longer publishes it. Every token the key signed stops verifying.",
		Example: "  kubectl authsvc revoke -n prod K064qR27NUsW9DnhaYNa_0kp2aO50tm9IPPjmK-hljk\n" +
			"  kubectl authsvc revoke -n prod --yes -- -teOQNxHiHr5hv9buDd6RNPTBG5R5XoCdRSf72iOZh8   # a kid starting with '-' goes after --",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := o.connect(cmd.Context())
			if err != nil {
				return err
			}
			return revoke(cmd.Context(), cmd, t, args[0], yes, timeout)
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "revoke; without it only the preview is shown")
	cmd.Flags().DurationVar(&timeout, "timeout", timeout, "with --yes, how long to wait until the key is no longer published; 0 does not wait")
	return cmd
}

// revoke prints the preview and, when yes, applies the revocation.
func revoke(ctx context.Context, cmd *cobra.Command, t *target, kid string, yes bool, timeout time.Duration) error {
	as, err := t.get(ctx)
	if err != nil {
		return err
	}
	if slices.Contains(as.Spec.SigningKeys.RevokedKeyIDs, authv1alpha1.KeyID(kid)) {
		fmt.Fprintf(cmd.OutOrStdout(), "key %s is already in spec.signingKeys.revokedKeyIDs of %s: nothing to do\n", kid, t.ref())
		return nil
	}
	preview, err := revokePreview(as, kid, serverReplicas(ctx, t, as))
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprint(out, preview)
	if !yes {
		fmt.Fprintln(out, "Nothing changed. Run again with --yes to revoke.")
		return nil
	}

	patch := client.MergeFromWithOptions(as.DeepCopy(), client.MergeFromWithOptimisticLock{})
	as.Spec.SigningKeys.RevokedKeyIDs = append(as.Spec.SigningKeys.RevokedKeyIDs, authv1alpha1.KeyID(kid))
	if err := t.client.Patch(ctx, as, patch); err != nil {
		return fmt.Errorf("add %s to spec.signingKeys.revokedKeyIDs of %s: %w", kid, t.ref(), err)
	}
	fmt.Fprintf(out, "revoked: %s added to spec.signingKeys.revokedKeyIDs\n", kid)
	if timeout == 0 {
		return nil
	}
	last, err := t.waitFor(ctx, timeout, func(as *authv1alpha1.AuthService) bool {
		_, published := findKey(as, kid)
		return !published && as.Status.ObservedGeneration >= as.Generation
	})
	if errors.Is(err, errWaitTimedOut) {
		return fmt.Errorf("%s still publishes key %s after %s: the operator is down or failing (kubectl events --for authservice/%s)", t.ref(), kid, timeout, t.name)
	}
	if err != nil {
		return fmt.Errorf("wait for the revocation of %s: %w", kid, err)
	}
	fmt.Fprintf(out, "key %s is no longer published; key %s signs\n", kid, orNone(last.Status.ActiveKeyID))
	return nil
}

// replicaCount is how many auth-server replicas there are and where the number comes from.
type replicaCount struct {
	n      int32
	source string
}

// serverReplicas reads the auth server's Deployment; a user who may not read Deployments
// gets the spec's number instead.
func serverReplicas(ctx context.Context, t *target, as *authv1alpha1.AuthService) replicaCount {
	d := &appsv1.Deployment{}
	name := as.ServerName()
	if err := t.client.Get(ctx, client.ObjectKey{Namespace: as.Namespace, Name: name}, d); err == nil {
		return replicaCount{n: d.Status.Replicas, source: "Deployment " + name}
	}
	if as.Spec.Server.Replicas != nil {
		return replicaCount{n: *as.Spec.Server.Replicas, source: "spec.server.replicas; the Deployment could not be read"}
	}
	return replicaCount{n: -1, source: "unknown: the Deployment could not be read"}
}

// findKey returns the published key kid.
func findKey(as *authv1alpha1.AuthService, kid string) (authv1alpha1.PublishedKey, bool) {
	for _, k := range as.Status.Keys {
		if k.KeyID == kid {
			return k, true
		}
	}
	return authv1alpha1.PublishedKey{}, false
}

// revokePreview says what revoking kid does: which key it is, what happens to signing, how
// many keys stay published and how many replicas refuse its tokens. A kid the AuthService
// does not publish is an error listing the ones it does.
func revokePreview(as *authv1alpha1.AuthService, kid string, replicas replicaCount) (string, error) {
	key, ok := findKey(as, kid)
	if !ok {
		var published []string
		for _, k := range as.Status.Keys {
			published = append(published, k.KeyID+" ("+k.State+")")
		}
		return "", fmt.Errorf("AuthService %s/%s publishes no key %s; it publishes: %s", as.Namespace, as.Name, kid, orNone(strings.Join(published, ", ")))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Revoking key %s of AuthService %s/%s:\n", kid, as.Namespace, as.Name)
	fmt.Fprintf(&b, "  key:       %s, %s\n", key.State, keyTimes(key))
	b.WriteString("  tokens:    every token this key signed stops verifying at once\n")
	var stay []string
	for _, k := range as.Status.Keys {
		if k.KeyID != kid {
			stay = append(stay, k.KeyID+" ("+k.State+")")
		}
	}
	switch key.State {
	case "active":
		fmt.Fprintf(&b, "  signing:   the next key %s signs at once and a new next key is published; a consumer that cached the JWKS before %s was published rejects its tokens until it refreshes\n",
			orNone(as.Status.NextKeyID), orNone(as.Status.NextKeyID))
	case "next":
		b.WriteString("  signing:   unchanged; the operator publishes a new next key\n")
	default:
		b.WriteString("  signing:   unchanged\n")
	}
	fmt.Fprintf(&b, "  keys:      %d of %d stay published: %s\n", len(stay), len(as.Status.Keys), orNone(strings.Join(stay, ", ")))
	if replicas.n >= 0 {
		fmt.Fprintf(&b, "  replicas:  %d auth-server replica(s) (%s) refuse its tokens once the kubelet delivers the updated Secret\n", replicas.n, replicas.source)
	} else {
		fmt.Fprintf(&b, "  replicas:  %s\n", replicas.source)
	}
	return b.String(), nil
}

// keyTimes describes when a key changed state.
func keyTimes(k authv1alpha1.PublishedKey) string {
	switch k.State {
	case "active":
		return "signing since " + formatTime(k.ActivatedAt)
	case "retired":
		return "retired at " + formatTime(k.RetiredAt) + ", expires at " + formatTime(k.ExpiresAt)
	}
	return "published at " + formatTime(&k.CreatedAt)
}
