package install

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"

	"github.com/hiringo/auth-operator/internal/testutil/loopback"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
)

// alertsTestFile is the promtool unit test of the chart's alerts; its rule_files entry names
// rules.yaml, which the test writes beside it from the rendered chart.
const alertsTestFile = "test/install/testdata/alerts_test.yaml"

// monitoringValues turns the chart's PrometheusRule and Grafana dashboard on.
var monitoringValues = []string{"metrics.prometheusRule.enabled=true", "metrics.grafanaDashboard.enabled=true"}

// renderedRules returns the spec of the chart's PrometheusRule, which is a Prometheus rule file.
func renderedRules(t *testing.T) []byte {
	t.Helper()
	rule := single(t, decodeObjects(t, tools.helmTemplate(t, "ops", "monitoring", nil, monitoringValues...)), "PrometheusRule")
	data, err := yaml.Marshal(rule.Object["spec"])
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// ruleFile is the part of a Prometheus rule file the tests read.
type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert string `json:"alert"`
			Expr  string `json:"expr"`
		} `json:"rules"`
	} `json:"groups"`
}

func TestPrometheusRule_PassesPromtoolCheckAndItsUnitTests(t *testing.T) {
	dir := t.TempDir()
	rules := renderedRules(t)
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	unitTests := readFile(t, alertsTestFile)
	if err := os.WriteFile(filepath.Join(dir, "alerts_test.yaml"), unitTests, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := tools.runIn(t.Context(), dir, nil, tools.promtool, "check", "rules", "rules.yaml"); err != nil {
		t.Fatalf("promtool check rules: %v", err)
	}
	if res, err := tools.runIn(t.Context(), dir, nil, tools.promtool, "test", "rules", "alerts_test.yaml"); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, res.stdout)
	}

	// Every alert has a unit test that sees it fire.
	var file ruleFile
	if err := yaml.Unmarshal(rules, &file); err != nil {
		t.Fatal(err)
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `json:"alertname"`
				ExpAlerts []any  `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(unitTests, &tests); err != nil {
		t.Fatal(err)
	}
	fired := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, at := range tc.AlertRuleTest {
			if len(at.ExpAlerts) > 0 {
				fired[at.Alertname] = true
			}
		}
	}
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" && !fired[r.Alert] {
				t.Errorf("%s has no case in %s in which it fires", r.Alert, alertsTestFile)
			}
		}
	}
}

// grafanaVariables stand in for the dashboard's variables, so that its queries parse as PromQL.
var grafanaVariables = strings.NewReplacer("$__rate_interval", "5m", "$__range", "1h", "$namespace", ".*")

// monitoredMetrics returns every metric a rule or a dashboard panel of the rendered chart
// selects, each with where it is used.
func monitoredMetrics(t *testing.T) map[string][]string {
	t.Helper()
	used := map[string][]string{}
	collect := func(where, query string) {
		expr, err := parser.ParseExpr(query)
		if err != nil {
			t.Errorf("%s: %q does not parse: %v", where, query, err)
			return
		}
		parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
			if vs, ok := node.(*parser.VectorSelector); ok && vs.Name != "" && !slices.Contains(used[vs.Name], where) {
				used[vs.Name] = append(used[vs.Name], where)
			}
			return nil
		})
	}

	var file ruleFile
	if err := yaml.Unmarshal(renderedRules(t), &file); err != nil {
		t.Fatal(err)
	}
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			collect("alert "+r.Alert, r.Expr)
		}
	}

	cm := single(t, decodeObjects(t, tools.helmTemplate(t, "ops", "monitoring", nil, monitoringValues...)), "ConfigMap")
	data, _ := cm.Object["data"].(map[string]any)
	raw, _ := data["auth-operator.json"].(string)
	var dashboard struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(raw), &dashboard); err != nil {
		t.Fatalf("the dashboard ConfigMap holds no valid JSON: %v", err)
	}
	for _, p := range dashboard.Panels {
		for _, target := range p.Targets {
			collect("panel "+p.Title, grafanaVariables.Replace(target.Expr))
		}
	}
	if len(used) == 0 {
		t.Fatal("no rule or panel selects a metric")
	}
	return used
}

// exposedSeriesNames parses a /metrics body and returns the names its samples carry (a
// histogram's _bucket, _sum and _count).
func exposedSeriesNames(t *testing.T, body string) map[string]bool {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	names := map[string]bool{}
	for name, f := range families {
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			names[name], names[name+"_sum"], names[name+"_count"] = true, true, true
		default:
			names[name] = true
		}
	}
	return names
}

// missingMonitoredMetrics lists the metrics of the rules and panels, selected by served,
// that body does not expose.
func missingMonitoredMetrics(t *testing.T, used map[string][]string, served func(name string) bool, body string) []string {
	t.Helper()
	exposed := exposedSeriesNames(t, body)
	var missing []string
	for name, where := range used {
		if served(name) && !exposed[name] {
			missing = append(missing, fmt.Sprintf("%s (%s)", name, strings.Join(where, ", ")))
		}
	}
	sort.Strings(missing)
	return missing
}

// servedByAuthServer says which of the monitored metrics the auth server exposes; the rest
// are the manager's.
func servedByAuthServer(name string) bool { return strings.HasPrefix(name, "authserver_") }

// assertManagerServesMonitoredMetrics scrapes the running manager with a reader's token until
// every metric the chart's rules and panels select from the manager is exposed.
func assertManagerServesMonitoredMetrics(t *testing.T, m *runningManager, readerToken string) {
	t.Helper()
	used := monitoredMetrics(t)
	fromManager := func(name string) bool { return !servedByAuthServer(name) }
	var missing []string
	// The AuthService series appear with the reconcile that sets them.
	poll.Until(t, 30*time.Second, "the manager's /metrics to expose what the chart's rules and dashboard select", func() error {
		code, body, err := scrape(t.Context(), m, readerToken)
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("scrape: %d %w", code, err)
		}
		if missing = missingMonitoredMetrics(t, used, fromManager, body); len(missing) > 0 {
			return fmt.Errorf("missing:\n  %s", strings.Join(missing, "\n  "))
		}
		return nil
	})
}

// The auth server built as the image builds it, serving generated keys with a real Redis,
// exposes every metric the chart's rules and panels select from it.
func TestAuthServer_ServesEveryMetricTheChartMonitors(t *testing.T) {
	used := monitoredMetrics(t)
	binary := imageBinary(t, "authserver")
	redis := redistest.Start(t, redistest.Options{})
	keys := filepath.Join(t.TempDir(), "keys")
	if res, err := tools.run(t.Context(), nil, binary, "keys", "generate", "--dir", keys); err != nil {
		t.Fatalf("authserver keys generate: %v\n%s", err, res.stdout)
	}

	addr, adminAddr := loopback.FreeAddr(t), loopback.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, binary, "serve")
	cmd.Env = append(os.Environ(),
		"AUTHSERVER_LISTEN="+addr,
		"AUTHSERVER_ADMIN_LISTEN="+adminAddr,
		"AUTHSERVER_KEYS_DIR="+keys,
		"AUTHSERVER_REDIS_ADDRS="+redis.Addr,
		"AUTHSERVER_LOG_LEVEL=error",
		"AUTHSERVER_SHUTDOWN_DELAY=0s",
	)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the auth server: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("auth server output:\n%s", logs.String())
		}
	})

	base, admin := "http://"+addr, "http://"+adminAddr
	poll.Until(t, 30*time.Second, "the auth server to be ready", func() error {
		code, _, err := get(t.Context(), admin+"/readyz")
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("/readyz: %d %w", code, err)
		}
		return nil
	})
	// One forward-auth check without a token, so that the request series of a route the
	// alerts select exist as a scraper would find them.
	if code, _, err := get(t.Context(), base+"/auth/verify"); err != nil || code != http.StatusUnauthorized {
		t.Fatalf("GET /auth/verify without a token: %d %v, want 401", code, err)
	}
	code, body, err := get(t.Context(), admin+"/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", code, err)
	}
	if missing := missingMonitoredMetrics(t, used, servedByAuthServer, body); len(missing) > 0 {
		t.Errorf("the auth server's /metrics lacks what the chart's rules and dashboard select:\n  %s", strings.Join(missing, "\n  "))
	}
}

// get GETs url and returns the status and body.
func get(ctx context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}
