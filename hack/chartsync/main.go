package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Paths relative to the repository root.
const (
	crdBasesDir     = "config/crd/bases"
	managerRoleFile = "config/rbac/role.yaml"
	chartCRDsDir    = "charts/auth-operator/templates/crds"
	chartRoleFile   = "charts/auth-operator/templates/rbac/manager-role.yaml"
	policyFile      = "config/rbac/clusterrolebinding_policy.yaml"
	chartPolicyFile = "charts/auth-operator/templates/rbac/clusterrolebinding-policy.yaml"
	valuesSchema    = "charts/auth-operator/values.schema.json"
)

func main() {
	root := flag.String("root", ".", "repository root")
	check := flag.Bool("check", false, "write nothing; fail when a chart template differs from what its source renders")
	flag.Parse()

	want, err := plan(*root)
	if err == nil {
		if *check {
			err = compare(*root, want)
		} else {
			err = write(*root, want)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chartsync:", err)
		os.Exit(1)
	}
}

// plan renders every generated chart template, keyed by its path relative to root.
func plan(root string) (map[string][]byte, error) {
	want := map[string][]byte{}
	sources, err := filepath.Glob(filepath.Join(root, crdBasesDir, "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", crdBasesDir, err)
	}
	if len(sources) == 0 {
		return nil, fmt.Errorf("no CRDs in %s: run `make manifests`", crdBasesDir)
	}
	for _, src := range sources {
		data, err := os.ReadFile(src)
		if err != nil {
			return nil, fmt.Errorf("read CRD: %w", err)
		}
		name, tmpl, err := renderCRDTemplate(filepath.ToSlash(filepath.Join(crdBasesDir, filepath.Base(src))), data)
		if err != nil {
			return nil, err
		}
		want[filepath.ToSlash(filepath.Join(chartCRDsDir, name+".yaml"))] = tmpl
		if name == authServiceCRD {
			current, err := os.ReadFile(filepath.Join(root, valuesSchema))
			if err != nil {
				return nil, fmt.Errorf("read the values schema: %w", err)
			}
			schema, err := embedAuthServiceSpec(current, data)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", valuesSchema, err)
			}
			want[valuesSchema] = schema
		}
	}
	if _, ok := want[valuesSchema]; !ok {
		return nil, fmt.Errorf("no %s CRD in %s: run `make manifests`", authServiceCRD, crdBasesDir)
	}

	data, err := os.ReadFile(filepath.Join(root, managerRoleFile))
	if err != nil {
		return nil, fmt.Errorf("read the manager role (run `make manifests`): %w", err)
	}
	tmpl, err := renderManagerRoleTemplate(managerRoleFile, data)
	if err != nil {
		return nil, err
	}
	want[chartRoleFile] = tmpl

	data, err = os.ReadFile(filepath.Join(root, policyFile))
	if err != nil {
		return nil, fmt.Errorf("read the ClusterRoleBinding policy: %w", err)
	}
	if tmpl, err = renderClusterRoleBindingPolicyTemplate(policyFile, data); err != nil {
		return nil, err
	}
	want[chartPolicyFile] = tmpl
	return want, nil
}

// generatedCRDTemplates lists the files now in the chart's CRD folder, relative to root.
func generatedCRDTemplates(root string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(root, chartCRDsDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("list %s: %w", chartCRDsDir, err)
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".yaml") {
			out = append(out, filepath.ToSlash(filepath.Join(chartCRDsDir, e.Name())))
		}
	}
	return out, nil
}

// write makes the chart match want and removes CRD templates whose source is gone.
func write(root string, want map[string][]byte) error {
	existing, err := generatedCRDTemplates(root)
	if err != nil {
		return err
	}
	for _, path := range existing {
		if _, ok := want[path]; !ok {
			if err := os.Remove(filepath.Join(root, path)); err != nil {
				return fmt.Errorf("remove stale template: %w", err)
			}
			fmt.Println("removed", path)
		}
	}
	for _, path := range sortedPaths(want) {
		full := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return fmt.Errorf("create folder: %w", err)
		}
		if err := os.WriteFile(full, want[path], 0o644); err != nil {
			return fmt.Errorf("write template: %w", err)
		}
		fmt.Println("wrote", path)
	}
	return nil
}

// compare reports every chart template that differs from want, is missing, or has no source.
func compare(root string, want map[string][]byte) error {
	var drift []string
	for _, path := range sortedPaths(want) {
		got, err := os.ReadFile(filepath.Join(root, path))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			drift = append(drift, path+" is missing")
		case err != nil:
			return fmt.Errorf("read template: %w", err)
		case !bytes.Equal(got, want[path]):
			drift = append(drift, path+" differs from its source")
		}
	}
	existing, err := generatedCRDTemplates(root)
	if err != nil {
		return err
	}
	for _, path := range existing {
		if _, ok := want[path]; !ok {
			drift = append(drift, path+" has no source in "+crdBasesDir)
		}
	}
	if len(drift) > 0 {
		return fmt.Errorf("the chart is out of date with config/ (run `make chart-crds`):\n  %s", strings.Join(drift, "\n  "))
	}
	return nil
}

// sortedPaths returns the keys of m in order.
func sortedPaths(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
