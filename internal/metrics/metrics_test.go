package metrics

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func scrape(t *testing.T, r *Registry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	r.Handler(slog.New(slog.NewTextHandler(io.Discard, nil))).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

func TestObserveHTTP(t *testing.T) {
	r := New()
	r.ObserveHTTP("/_matrix/client/versions", "GET", 200, 3*time.Millisecond)
	r.ObserveHTTP("/_matrix/client/versions", "GET", 200, 5*time.Millisecond)
	r.ObserveHTTP("unmatched", "BREW", 404, time.Millisecond)
	out := scrape(t, r)
	for _, want := range []string{
		`myelin_http_requests_total{code="200",method="GET",route="/_matrix/client/versions"} 2`,
		`myelin_http_requests_total{code="404",method="other",route="unmatched"} 1`,
		`myelin_http_request_duration_seconds_count{method="GET",route="/_matrix/client/versions"} 2`,
		`myelin_http_request_duration_seconds_bucket{method="GET",route="/_matrix/client/versions",le="0.005"} 2`,
		"go_goroutines ",
		"process_start_time_seconds ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

// Several servers run in one test process: each registry is its own, and
// none touches the global default registry.
func TestRegistriesAreIndependent(t *testing.T) {
	a, b := New(), New()
	a.ObserveHTTP("/a", "GET", 200, time.Millisecond)
	if strings.Contains(scrape(t, b), `route="/a"`) {
		t.Fatal("a request observed on one registry shows on another")
	}
}
