package builder

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/thinroot/thinroot/lvm"
)

// A body over the limit is refused as a bad request, not read to its end.
func TestOversizedRequest(t *testing.T) {
	s, b := testServer(t)
	big := `{"config": "f41", "command": ["` + strings.Repeat("x", 2*maxRequest) + `"]}`
	rec := post(s.Handler(), &Cred{UID: 0}, "/v1/builds", []byte(big))
	if rec.Code != http.StatusBadRequest || len(b.List()) != 0 {
		t.Fatalf("oversized body: %d %s", rec.Code, rec.Body)
	}
}

// FuzzSubmit posts arbitrary bodies to the submit handler as root, as a
// member of the group and as an outsider. Outsiders always get 403 and
// queue nothing; otherwise the answer is 201 with a build whose names are
// valid and whose request is the body's, or 400 with a reason; never a
// server error, never a build from a body that is not one JSON request
// for a known config with a command. The seed corpus is
// testdata/fuzz/FuzzSubmit.
func FuzzSubmit(f *testing.F) {
	f.Add([]byte(`{"config": "f41", "command": ["/bin/true"], "uniqueext": "e1"}`), uint8(0))
	s, b := testServer(f)
	h := s.Handler()
	creds := []Cred{{UID: 0}, {UID: 1000, GID: 1000, Groups: []int{fuzzGID}}, {UID: 1001, GID: 1001}}
	f.Fuzz(func(t *testing.T, body []byte, who uint8) {
		cr := creds[int(who)%len(creds)]
		before := len(b.List())
		rec := post(h, &cr, "/v1/builds", body)
		queued := len(b.List()) - before
		if cr.UID == 1001 {
			if rec.Code != http.StatusForbidden || queued != 0 {
				t.Fatalf("an outsider got %d and queued %d builds", rec.Code, queued)
			}
			return
		}
		switch rec.Code {
		case http.StatusCreated:
			var got Build
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || queued != 1 {
				t.Fatalf("201 with %q (%v), %d builds queued", rec.Body, err, queued)
			}
			var req Request
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil {
				t.Fatalf("accepted a body that is not a request: %v", err)
			}
			if req.Config != "f41" || len(req.Command) == 0 || lvm.ValidateExt("f41", got.UniqueExt) != nil ||
				(req.Snapshot != "" && lvm.ValidateSnapshot("f41", req.Snapshot) != nil) || got.Owner != cr.UID {
				t.Fatalf("accepted %+v as %+v", req, got)
			}
			if err := b.Cancel(got.ID, 0); err != nil {
				t.Fatalf("cancel the accepted build: %v", err)
			}
		case http.StatusBadRequest:
			var e APIError
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" || queued != 0 {
				t.Fatalf("400 without a reason (%q) or with %d builds queued", rec.Body, queued)
			}
		default:
			data, _ := io.ReadAll(rec.Body)
			t.Fatalf("status %d for %q: %s", rec.Code, body, data)
		}
	})
}
