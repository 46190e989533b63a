package httpapi_test

import (
	"net/http"
	"testing"
)

func BenchmarkTmpVerifyMissCached(b *testing.B) {
	h := newHarness(b, nil, withCache(10000))
	toks := issueMany(b, h.set, b.N)
	serveParallel(b, h, http.MethodGet, "/auth/verify", toks, http.StatusOK)
}
