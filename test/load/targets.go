package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/hiringo/auth-operator/authserver/keyfiles"
	"github.com/hiringo/auth-operator/authserver/token"
)

// target is one vegeta JSON target line.
type target struct {
	Method string              `json:"method"`
	URL    string              `json:"url"`
	Header map[string][]string `json:"header,omitempty"`
}

// issueTokens signs n distinct seed-shaped tokens (the session id differs) with the
// active key, on every core.
func issueTokens(set keyfiles.Set, tag string, n int) ([]string, error) {
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

// writeTargets writes one target per token (or one plain target when toks is nil).
func writeTargets(path, method, url string, toks []string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	if toks == nil {
		if err := enc.Encode(target{Method: method, URL: url}); err != nil {
			return err
		}
	}
	for _, tok := range toks {
		t := target{Method: method, URL: url, Header: http.Header{"Authorization": {"Bearer " + tok}}}
		if err := enc.Encode(t); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}
