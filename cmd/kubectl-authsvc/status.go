package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

func newStatusCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show an AuthService's keys (states and times) and the readiness of its Redis and auth server, in one table",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := o.connect(cmd.Context())
			if err != nil {
				return err
			}
			as, err := t.get(cmd.Context())
			if err != nil {
				return err
			}
			return writeTable(cmd.OutOrStdout(), statusRows(as))
		},
	}
}

// statusHeader are the columns of the status table.
var statusHeader = []string{"PART", "NAME", "STATE", "SINCE", "UNTIL", "DETAIL"}

// statusRows lays an AuthService out as the status table: its Ready summary, the keys, server
// and Redis conditions, then every published key, active first. SINCE and UNTIL are the times a
// state began and ends (for a key: activated or created or retired, and the next rotation or
// its expiry).
func statusRows(as *authv1alpha1.AuthService) [][]string {
	rows := [][]string{statusHeader}
	for _, c := range []struct{ part, condition, name string }{
		{"authservice", authv1alpha1.ReadyCondition, as.Name},
		{"keys", authv1alpha1.KeysReadyCondition, as.SigningKeysSecretName()},
		{"server", authv1alpha1.ServerReadyCondition, as.ServerName()},
		{"redis", authv1alpha1.RedisReadyCondition, as.RedisName()},
	} {
		cond := meta.FindStatusCondition(as.Status.Conditions, c.condition)
		if cond == nil {
			rows = append(rows, []string{c.part, c.name, "Unknown", "-", "-", c.condition + " not reported yet"})
			continue
		}
		detail := cond.Reason
		if cond.Message != "" {
			detail += ": " + cond.Message
		}
		if c.part == "server" && as.Status.ServerURL != "" {
			detail = as.Status.ServerURL + " " + detail
		}
		state := string(cond.Status)
		if cond.ObservedGeneration != as.Generation {
			state += " (stale)"
		}
		rows = append(rows, []string{c.part, c.name, state, formatTime(&cond.LastTransitionTime), "-", detail})
	}
	for _, state := range []string{"active", "next", "retired"} {
		for _, k := range as.Status.Keys {
			if k.State != state {
				continue
			}
			switch state {
			case "active":
				rows = append(rows, []string{"key", k.KeyID, state, formatTime(k.ActivatedAt), formatTime(as.Status.NextRotationTime), "signs until the next rotation"})
			case "next":
				rows = append(rows, []string{"key", k.KeyID, state, formatTime(&k.CreatedAt), formatTime(as.Status.NextRotationTime), "published, verifies; signs from the next rotation"})
			case "retired":
				rows = append(rows, []string{"key", k.KeyID, state, formatTime(k.RetiredAt), formatTime(k.ExpiresAt), "verifies the tokens it signed until it expires"})
			}
		}
	}
	return rows
}

// formatTime prints a time in UTC, or "-" when it is not set.
func formatTime(t *metav1.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// writeTable prints rows as aligned columns.
func writeTable(w io.Writer, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, row := range rows {
		for i, cell := range row {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, cell)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}
