// Package metrics keeps one Prometheus registry per server and the HTTP
// metrics every API shares. The registry is per server, never the global
// default, because several servers run in one test process.
//
// Metric names follow myelin_<area>_<what>. Components register their own
// metrics on Registerer().
package metrics

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Registry is a server's metrics: its Prometheus registry with the Go
// runtime and process collectors, and the HTTP request metrics.
type Registry struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// New returns a registry with the Go runtime, process and HTTP metrics.
func New() *Registry {
	r := &Registry{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "myelin_http_requests_total",
			Help: "HTTP requests served, by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "myelin_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route template and method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"}),
	}
	r.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		r.requests,
		r.duration,
	)
	return r
}

// Registerer is where components register their own metrics.
func (r *Registry) Registerer() prometheus.Registerer { return r.reg }

// Gatherer reads the current values (for tests and the handler).
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// ObserveHTTP records one finished request. It matches httputil.Observer.
// route must be a route template, never a raw path, or the label set grows
// with every room and user ID.
func (r *Registry) ObserveHTTP(route, method string, status int, elapsed time.Duration) {
	method = normalizeMethod(method)
	r.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	r.duration.WithLabelValues(route, method).Observe(elapsed.Seconds())
}

// Handler serves the registry in the Prometheus exposition format
// (GET /metrics); errors while gathering are logged to logger.
func (r *Registry) Handler(logger *slog.Logger) http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelError),
		Registry: r.reg, // counts scrape errors in promhttp_metric_handler_errors_total
	})
}

// normalizeMethod keeps the method label to the known methods, so a client
// sending made-up methods cannot grow the label set.
func normalizeMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}
