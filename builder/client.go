package builder

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
)

// Client talks to the API on a unix socket.
type Client struct {
	Socket string
	hc     *http.Client
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &Client{Socket: path, hc: &http.Client{Transport: tr}}
}

func (c *Client) do(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://thinroot"+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("thinroot daemon at %s: %w", c.Socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return httpError(resp)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// HTTPError is an error answer of the API.
type HTTPError struct {
	Code int
	Msg  string
	Kind string // APIError.Kind
}

func httpError(resp *http.Response) error {
	var e APIError
	json.NewDecoder(resp.Body).Decode(&e)
	return &HTTPError{Code: resp.StatusCode, Msg: e.Error, Kind: e.Kind}
}

func (e *HTTPError) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.Msg, e.Code) }

// Submit queues a build.
func (c *Client) Submit(ctx context.Context, req Request) (Build, error) {
	var b Build
	err := c.do(ctx, http.MethodPost, "/v1/builds", req, &b)
	return b, err
}

// List returns every build.
func (c *Client) List(ctx context.Context) ([]Build, error) {
	var bs []Build
	err := c.do(ctx, http.MethodGet, "/v1/builds", nil, &bs)
	return bs, err
}

// Get returns one build.
func (c *Client) Get(ctx context.Context, id string) (Build, error) {
	var b Build
	err := c.do(ctx, http.MethodGet, "/v1/builds/"+url.PathEscape(id), nil, &b)
	return b, err
}

// Cancel asks the daemon to stop a build.
func (c *Client) Cancel(ctx context.Context, id string) (Build, error) {
	var b Build
	err := c.do(ctx, http.MethodPost, "/v1/builds/"+url.PathEscape(id)+"/cancel", nil, &b)
	return b, err
}

// Volume runs a volume command in the daemon (POST /v1/volumes).
func (c *Client) Volume(ctx context.Context, argv []string) (VolumeResult, error) {
	var out VolumeResult
	err := c.do(ctx, http.MethodPost, "/v1/volumes", VolumeCommand{Argv: argv}, &out)
	return out, err
}

// Prune removes the finished builds that r does not keep.
func (c *Client) Prune(ctx context.Context, r Retention) ([]Pruned, error) {
	var out []Pruned
	err := c.do(ctx, http.MethodPost, "/v1/builds/prune", r, &out)
	return out, err
}

// Events follows a build, calling fn for each event until the end event
// (returned) or ctx ends.
func (c *Client) Events(ctx context.Context, id string, fn func(Event)) (Build, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://thinroot/v1/builds/"+url.PathEscape(id)+"/events", nil)
	if err != nil {
		return Build{}, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return Build{}, fmt.Errorf("thinroot daemon at %s: %w", c.Socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return Build{}, httpError(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return Build{}, fmt.Errorf("events: %w", err)
		}
		if ev.Type == "end" && ev.Build != nil {
			return *ev.Build, nil
		}
		fn(ev)
	}
	if err := sc.Err(); err != nil {
		return Build{}, err
	}
	if ctx.Err() != nil {
		return Build{}, ctx.Err()
	}
	return Build{}, fmt.Errorf("events of %s ended early", id)
}

// Wait blocks until a build has ended and returns its final record.
func (c *Client) Wait(ctx context.Context, id string) (Build, error) {
	var b Build
	err := c.do(ctx, http.MethodGet, "/v1/builds/"+url.PathEscape(id)+"/wait", nil, &b)
	return b, err
}

// Log copies a build's log to w from offset; with follow it goes on until
// the build has ended (or ctx ends). It returns the offset reached.
func (c *Client) Log(ctx context.Context, id string, offset int64, follow bool, w io.Writer) (int64, error) {
	q := url.Values{}
	if offset > 0 {
		q.Set("offset", fmt.Sprint(offset))
	}
	if follow {
		q.Set("follow", "1")
	}
	u := "http://thinroot/v1/builds/" + url.PathEscape(id) + "/log"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return offset, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return offset, fmt.Errorf("thinroot daemon at %s: %w", c.Socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return offset, httpError(resp)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return offset + n, err
}

// GetJSON decodes the answer of a GET of path (under /v1/) into out.
func (c *Client) GetJSON(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, "/v1/"+path, nil, out)
}
