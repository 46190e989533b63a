package devstack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/hiringo/auth-operator/controllers"
)

// installIssuerClusterRole creates the ClusterRole the operator binds to every issuer (create
// TokenReviews), from config/rbac as an install ships it. The stack installs the CRDs but not
// the operator's manifests, and without the role an issuer cannot review its callers' tokens.
// The file's name is the kustomization's before its namePrefix; the operator binds
// controllers.IssuerClusterRoleName.
func (s *Stack) installIssuerClusterRole(ctx context.Context) error {
	path := filepath.Join(s.opts.RepoRoot, "config", "rbac", "issuer_role.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading the issuer's ClusterRole: %w", err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(data, &role); err != nil {
		return fmt.Errorf("decoding %s: %w", path, err)
	}
	role.Name = controllers.IssuerClusterRoleName
	c, err := s.Client()
	if err != nil {
		return err
	}
	if err := c.Create(ctx, &role); err != nil {
		return fmt.Errorf("creating ClusterRole %s: %w", role.Name, err)
	}
	return nil
}
