package syncapi_test

import (
	"net/http"
	_ "net/http/pprof"
	"os"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/servertest"
)

func TestZZServeForProfiling(t *testing.T) {
	if os.Getenv("ZZ_PROFILE") == "" {
		return
	}
	s := servertest.Start(t, 1)[0]
	go http.ListenAndServe("127.0.0.1:6061", nil)
	os.WriteFile("/tmp/zz_url", []byte(s.ClientURL), 0o644)
	time.Sleep(10 * time.Minute)
}
