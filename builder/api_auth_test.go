package builder

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

const fuzzGID = 4242

func testServer(t testing.TB) (*Server, *Builder) {
	b, err := New(context.Background(), Options{StateDir: t.TempDir(), Jobs: 1,
		Resolve: func(root string) (ConfigInfo, error) {
			if root != "f41" {
				return ConfigInfo{}, errors.New("no such config")
			}
			return ConfigInfo{Root: root}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	return &Server{B: b, GID: fuzzGID}, b
}

func post(h http.Handler, cr *Cred, path string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", path, bytes.NewReader(body))
	if cr != nil {
		req = req.WithContext(context.WithValue(req.Context(), credKey{}, *cr))
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// A request that reaches the handler without the caller's identity (the
// server could not read SO_PEERCRED, or the handler is served some other
// way) changes nothing: it is nobody, never root.
func TestNoIdentityIsNobody(t *testing.T) {
	s, b := testServer(t)
	rec := post(s.Handler(), nil, "/v1/builds", []byte(`{"config": "f41", "command": ["true"]}`))
	if rec.Code != http.StatusForbidden || len(b.List()) != 0 {
		t.Fatalf("submit without an identity: %d %s (%d builds queued), want 403", rec.Code, rec.Body, len(b.List()))
	}
	if rec := post(s.Handler(), nil, "/v1/builds/x/cancel", nil); rec.Code != http.StatusForbidden {
		t.Fatalf("cancel without an identity: %d, want 403", rec.Code)
	}
}

// Pruning removes other people's records: nobody and callers outside the
// group may not; a member may, and must say what to prune.
func TestPruneNeedsTheGroup(t *testing.T) {
	s, _ := testServer(t)
	body := []byte(`{"max_count": 5}`)
	if rec := post(s.Handler(), nil, "/v1/builds/prune", body); rec.Code != http.StatusForbidden {
		t.Fatalf("prune without an identity: %d, want 403", rec.Code)
	}
	if rec := post(s.Handler(), &Cred{UID: 1234, GID: 1234}, "/v1/builds/prune", body); rec.Code != http.StatusForbidden {
		t.Fatalf("prune by a stranger: %d, want 403", rec.Code)
	}
	member := &Cred{UID: 1234, GID: 1234, Groups: []int{fuzzGID}}
	if rec := post(s.Handler(), member, "/v1/builds/prune", []byte(`{}`)); rec.Code != http.StatusBadRequest {
		t.Fatalf("prune of nothing: %d, want 400", rec.Code)
	}
	if rec := post(s.Handler(), member, "/v1/builds/prune", body); rec.Code != http.StatusOK || rec.Body.String() != "[]\n" {
		t.Fatalf("prune by a member: %d %q", rec.Code, rec.Body)
	}
}
