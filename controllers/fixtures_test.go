package controllers

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

// The fixtures of the tests, the pure ones and those that need envtest (built without the
// unit tag, see suite_test.go) alike.

// t0 is the fake clock's start: well after any real creation timestamp is irrelevant here,
// the lifecycle only compares times it wrote itself.
var t0 = time.Date(2026, 11, 24, 6, 0, 0, 0, time.UTC)

func condition(as *authv1alpha1.AuthService, conditionType string) metav1.Condition {
	if c := meta.FindStatusCondition(as.Status.Conditions, conditionType); c != nil {
		return *c
	}
	return metav1.Condition{Type: conditionType, Status: "Missing"}
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

func ptrTo[T any](v T) *T { return &v }

// externalRedis points an AuthService at a Redis without password, so that its auth
// server is rolled out without a managed Redis.
func externalRedis(as *authv1alpha1.AuthService) {
	as.Spec.Redis = authv1alpha1.RedisSpec{External: &authv1alpha1.ExternalRedisSpec{Addresses: []authv1alpha1.RedisAddress{"redis.corp:6379"}}}
}

// named is an AuthService of that namespace and name, for the names of its objects.
func named(ns, name string) *authv1alpha1.AuthService {
	return &authv1alpha1.AuthService{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
}

const testImage = "ghcr.io/hiringo/auth-operator:test"

// testScheme knows the built-in kinds and the AuthService.
var testScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(authv1alpha1.AddToScheme(s))
	return s
}()

func envMap(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			m[e.Name] = "<from>"
			continue
		}
		m[e.Name] = e.Value
	}
	return m
}

func withHA(as *authv1alpha1.AuthService) {
	as.Spec.Redis.Managed = &authv1alpha1.ManagedRedisSpec{HighAvailability: &authv1alpha1.RedisHighAvailabilitySpec{}}
}
