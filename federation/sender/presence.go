package sender

// Local users' presence, sent to every server sharing a room with them
// (server-server-api "Presence"). The sender reads the presence table in
// stream order from where it was at start, woken by the sync.notify
// wake-ups of presence writes, and holds an m.presence EDU in memory for
// each server concerned. At start it sends the presence of every local
// user not offline, and it sends it again every presencePing while it
// stays so: receivers mark a user offline after 30 minutes without news
// (Synapse does both, and so does this server's sync API).

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/storage"
)

const (
	eduPresence = "m.presence"
	// presencePing is how often a local user's presence is sent again
	// while it is not offline (Synapse's FEDERATION_PING_INTERVAL).
	presencePing = 25 * time.Minute
	// presenceBatch bounds the presence rows read at once.
	presenceBatch = 500
)

type presenceOut struct {
	s    *Sender
	wake chan struct{}
	// Read and written only by run, after init.
	cursor   int64
	startPos int64                // the stream position at start
	lastSent map[string]time.Time // local users not offline → when last sent
	tick     time.Duration        // how often run looks for pings due
}

func newPresenceOut(s *Sender) *presenceOut {
	return &presenceOut{s: s, wake: make(chan struct{}, 1), lastSent: map[string]time.Time{}, tick: time.Minute}
}

// init starts the read from the beginning: rows up to the present are
// sent only for users not offline.
func (p *presenceOut) init(ctx context.Context) error {
	pos, err := p.s.cfg.DB.StreamPos(ctx)
	if err != nil {
		return err
	}
	p.startPos = pos
	signal(p.wake)
	return nil
}

func (p *presenceOut) run() {
	defer p.s.wg.Done()
	ticker := time.NewTicker(p.tick)
	defer ticker.Stop()
	for {
		select {
		case <-p.s.stop:
			return
		case <-p.wake:
			for {
				n, err := p.forward()
				if err != nil {
					p.s.log.Warn("cannot forward presence", "err", err)
					break // the next wake-up or tick tries again
				}
				if n < presenceBatch {
					break
				}
			}
		case <-ticker.C:
			p.ping()
		}
	}
}

// forward sends the presence changed after the cursor, one batch, and
// returns how many rows it read.
func (p *presenceOut) forward() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := p.s.cfg.DB.PresenceAfter(ctx, p.cursor, presenceBatch)
	if err != nil {
		return 0, err
	}
	for i := range rows {
		pr := &rows[i]
		if pr.RemoteTS != 0 || roomserver.UserServer(pr.UserID) != p.s.cfg.ServerName {
			continue
		}
		if pr.StreamPos > p.startPos || pr.State != "offline" {
			if err := p.send(ctx, pr); err != nil {
				return 0, err
			}
		}
	}
	if len(rows) > 0 {
		p.cursor = rows[len(rows)-1].StreamPos
	}
	return len(rows), nil
}

// ping sends again the presence of the users not offline last sent
// presencePing ago.
func (p *presenceOut) ping() {
	now := p.s.cfg.Now()
	for userID, at := range p.lastSent {
		if now.Sub(at) < presencePing {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		pr, err := p.s.cfg.DB.GetPresence(ctx, userID)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			delete(p.lastSent, userID)
		case err != nil:
			p.s.log.Warn("cannot send presence again", "user", userID, "err", err)
		default:
			err = p.send(ctx, pr)
			if err != nil {
				p.s.log.Warn("cannot send presence again", "user", userID, "err", err)
			}
		}
		cancel()
	}
}

// send holds the user's m.presence EDU for every server sharing a room
// with them.
func (p *presenceOut) send(ctx context.Context, pr *storage.Presence) error {
	if pr.State == "offline" {
		delete(p.lastSent, pr.UserID)
	} else {
		p.lastSent[pr.UserID] = p.s.cfg.Now()
	}
	dests, err := p.s.UserDestinations(ctx, pr.UserID)
	if err != nil || len(dests) == 0 {
		return err
	}
	return p.s.QueueEDU(ctx, dests, presenceEDU(pr, p.s.cfg.Now()))
}

// presenceEDU is the m.presence EDU of one user's presence.
func presenceEDU(pr *storage.Presence, now time.Time) bus.EDU {
	type update struct {
		UserID          string  `json:"user_id"`
		Presence        string  `json:"presence"`
		StatusMsg       *string `json:"status_msg,omitempty"`
		LastActiveAgo   int64   `json:"last_active_ago"`
		CurrentlyActive bool    `json:"currently_active"`
	}
	u := update{UserID: pr.UserID, Presence: pr.State, StatusMsg: pr.StatusMsg,
		CurrentlyActive: pr.CurrentlyActive && pr.State == "online"}
	if pr.LastActiveTS > 0 {
		u.LastActiveAgo = max(0, now.UnixMilli()-pr.LastActiveTS)
	}
	content, _ := json.Marshal(map[string]any{"push": []update{u}})
	return bus.EDU{Type: eduPresence, Content: content, Key: pr.UserID}
}
