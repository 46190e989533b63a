package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hiringo/auth-operator/authserver/keydomain"
	"github.com/hiringo/auth-operator/authserver/token"
)

// issueBody is the user every issuance run asks a session for.
const issueBody = `{"id":"load-user","email":"load@example.com","name":"Load"}`

// target is one vegeta JSON target line.
type target struct {
	Method string              `json:"method"`
	URL    string              `json:"url"`
	Header map[string][]string `json:"header,omitempty"`
	Body   []byte              `json:"body,omitempty"`
}

// supplies are the tokens of a run: 1 000 recurring ones (what forward-auth sees),
// and unique ones signed as each run needs them, never presented twice to a server
// that remembers them.
type supplies struct {
	set       keydomain.Set
	work      string
	batches   int
	recurring []string
	// floorUnique are unique tokens for the stateless floors, which may see them again.
	floorUnique []string
}

func newSupplies(set keydomain.Set, work string, o options) (*supplies, error) {
	s := &supplies{set: set, work: work}
	var err error
	if s.recurring, err = issueTokens(set, "recurring", 1000); err != nil {
		return nil, err
	}
	if s.floorUnique, err = issueTokens(set, "floor", o.maxRate*int(o.duration.Seconds())); err != nil {
		return nil, err
	}
	return s, nil
}

// fresh signs n tokens no server has seen.
func (s *supplies) fresh(n int) ([]string, error) {
	s.batches++
	return issueTokens(s.set, "batch"+strconv.Itoa(s.batches), n)
}

// issueTokens signs n distinct seed-shaped tokens (the session id differs) with the
// active key, on every core.
func issueTokens(set keydomain.Set, tag string, n int) ([]string, error) {
	active, ok := set.Active()
	if !ok {
		return nil, fmt.Errorf("key set has no active key")
	}
	toks := make([]string, n)
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	errs := make([]error, workers)
	now := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				c := token.NewClaims(token.User{
					ID: "load-user-" + strconv.Itoa(i%5000), Name: "Load", Email: "load@example.com",
					Auth: token.Session{ID: tag + "-" + strconv.Itoa(i), Token: "0"},
				}, now, 15*time.Minute)
				s, err := token.Issue(active, c)
				if err != nil {
					errs[w] = err
					return
				}
				toks[i] = s
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return toks, nil
}

// writeLines writes one token a line, for the wrk script.
func writeLines(path string, toks []string) error {
	return os.WriteFile(path, []byte(strings.Join(toks, "\n")+"\n"), 0o644)
}

// introspectionLine is the line of the token script (and the target) that introspects
// tok as the caller whose ServiceAccount token is caller: "CALLER<TAB>token=TOK".
func introspectionLine(caller, tok string) string {
	return caller + "\t" + url.Values{"token": {tok}}.Encode()
}

// writeTargets writes one vegeta target per token, each with body when not empty; a
// line of introspectionLine's is the caller's bearer and a form body instead.
func writeTargets(path, method, url string, toks []string, body string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, tok := range toks {
		t := target{Method: method, URL: url, Header: http.Header{"Authorization": {"Bearer " + tok}}}
		if caller, form, ok := strings.Cut(tok, "\t"); ok {
			t.Header = http.Header{"Authorization": {"Bearer " + caller}, "Content-Type": {"application/x-www-form-urlencoded"}}
			t.Body = []byte(form)
		} else if body != "" {
			t.Header["Content-Type"] = []string{"application/json"}
			t.Body = []byte(body)
		}
		if err := enc.Encode(t); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
