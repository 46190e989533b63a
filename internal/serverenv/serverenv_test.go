package serverenv

import (
	"slices"
	"testing"
)

func TestFlagAndVar_AreInverse(t *testing.T) {
	for _, name := range Serve {
		if got := Var(Flag(name)); got != name {
			t.Errorf("Var(Flag(%s)) = %s", name, got)
		}
	}
	if got := Flag(RedisMinReplicasAcked); got != "redis-min-replicas-acked" {
		t.Errorf("Flag(%s) = %s", RedisMinReplicasAcked, got)
	}
}

func TestServe_ListsEachVariableOnce(t *testing.T) {
	seen := map[string]bool{}
	for _, name := range Serve {
		if seen[name] {
			t.Errorf("%s is listed twice", name)
		}
		seen[name] = true
	}
}

func TestUnknown_NamesOnlyForeignAuthserverVariables(t *testing.T) {
	environ := []string{"PATH=/bin", "AUTHSERVER_LEEWAY=1s", "AUTHSERVER_REDIS_ADRS=x", "AUTHSERVER_ZED=", "AUTHSERVER_REDIS_ADRS=y", "OTEL_SERVICE_NAME=a"}
	if got, want := Unknown(environ, Serve), []string{"AUTHSERVER_REDIS_ADRS", "AUTHSERVER_ZED"}; !slices.Equal(got, want) {
		t.Errorf("Unknown = %v, want %v", got, want)
	}
	if got := Unknown([]string{"AUTHSERVER_LEEWAY=1s"}, Serve); got != nil {
		t.Errorf("Unknown of known variables = %v", got)
	}
}
