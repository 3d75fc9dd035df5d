package servertest

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

func TestStartGivesSeparateServers(t *testing.T) {
	servers := Start(t, 3)
	names, dirs, namespaces := map[string]bool{}, map[string]bool{}, map[string]bool{}
	wantDialect := storage.SQLite
	if os.Getenv(storagetest.EnvPostgres) != "" {
		wantDialect = storage.PostgreSQL
	}
	for _, s := range servers {
		if !strings.HasPrefix(s.Name, "127.0.0.1:") || s.Name != s.FederationAddr().String() || s.Name != s.ServerName() {
			t.Fatalf("server name %q, federation address %s", s.Name, s.FederationAddr())
		}
		if s.FederationURL != "https://"+s.Name || s.ClientURL != "http://"+s.ClientAddr().String() {
			t.Fatalf("URLs %s %s", s.ClientURL, s.FederationURL)
		}
		names[s.Name] = true
		dirs[s.Config().DataDir] = true
		namespaces[s.Bus().Namespace()] = true
		if d := s.DB().Dialect(); d != wantDialect {
			t.Fatalf("database %s, want %s", d, wantDialect)
		}
		if !s.Bus().Embedded() {
			t.Fatal("not on an embedded NATS")
		}
	}
	if len(names) != 3 || len(dirs) != 3 || len(namespaces) != 3 {
		t.Fatalf("shared between servers: %d names, %d data dirs, %d bus namespaces", len(names), len(dirs), len(namespaces))
	}

	// Stop is graceful and may be called again (the cleanup does).
	if err := servers[2].Stop(); err != nil {
		t.Fatal(err)
	}
	if err := servers[2].Stop(); err != nil {
		t.Fatal(err)
	}
}

// The servers' outbound TLS trusts the test CA, not just anything.
func TestOutboundTLSTrustsOnlyTheTestCA(t *testing.T) {
	s := Start(t, 1)[0]
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer other.Close()
	for name, c := range map[string]*http.Client{"server": s.FederationClient(), "test": s.FedClient} {
		if resp, err := c.Get(other.URL); err == nil {
			resp.Body.Close()
			t.Errorf("%s federation client accepted a certificate from another CA", name)
		}
		resp, err := c.Get(s.FederationURL + "/_matrix/federation/v1/version")
		if err != nil {
			t.Fatalf("%s federation client: %v", name, err)
		}
		resp.Body.Close()
	}
}
