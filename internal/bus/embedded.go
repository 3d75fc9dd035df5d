package bus

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// startEmbedded runs nats-server in this process with JetStream stored in
// storeDir. DontListen: it opens no TCP port, so it never collides with a
// NATS already on the machine; the client connects in-process.
func startEmbedded(storeDir, namespace string, logger *slog.Logger) (*natsserver.Server, error) {
	opts := &natsserver.Options{
		ServerName: "myelin-" + namespace,
		DontListen: true,
		JetStream:  true,
		StoreDir:   storeDir,
		// The process's signals belong to Myelin, not to the NATS server.
		NoSigs: true,
	}
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		return nil, err
	}
	nl := &natsLogger{l: logger.With("nats", "embedded")}
	ns.SetLoggerV2(nl, false, false, false)
	// Start sets everything up before it returns; on a fatal error (the
	// store cannot be created, say) it logs it and returns early.
	ns.Start()
	if msg := nl.fatalMessage(); msg != "" {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, errors.New(msg)
	}
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, errors.New("the server did not become ready within 30s")
	}
	if !ns.JetStreamEnabled() {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, errors.New("JetStream did not start (see the log above for why)")
	}
	return ns, nil
}

// natsLogger sends nats-server's log lines to slog. Its notices (a startup
// banner of a dozen lines per server) go to debug: they say nothing an
// operator of Myelin needs.
// Fatal lines are kept, so that startEmbedded can report them: with a
// logger of ours, nats-server logs them instead of exiting.
type natsLogger struct {
	l     *slog.Logger
	mu    sync.Mutex
	fatal string
}

func (n *natsLogger) fatalMessage() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.fatal
}

func (n *natsLogger) Noticef(format string, v ...any) { n.l.Debug(fmt.Sprintf(format, v...)) }
func (n *natsLogger) Warnf(format string, v ...any)   { n.l.Warn(fmt.Sprintf(format, v...)) }
func (n *natsLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	n.l.Error(msg)
	n.mu.Lock()
	if n.fatal == "" {
		n.fatal = msg
	}
	n.mu.Unlock()
}
func (n *natsLogger) Errorf(format string, v ...any) { n.l.Error(fmt.Sprintf(format, v...)) }
func (n *natsLogger) Debugf(format string, v ...any) { n.l.Debug(fmt.Sprintf(format, v...)) }
func (n *natsLogger) Tracef(format string, v ...any) { n.l.Debug(fmt.Sprintf(format, v...)) }
