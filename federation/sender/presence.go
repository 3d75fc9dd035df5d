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
	// joins are the rooms that began to be shared with another server,
	// whose local users' presence that server is to hear now.
	joins chan presenceJoin
	// Read and written only by run, after init.
	cursor   int64
	startPos int64                // the stream position at start
	lastSent map[string]time.Time // local users not offline → when last sent
	tick     time.Duration        // how often run looks for pings due
}

func newPresenceOut(s *Sender) *presenceOut {
	return &presenceOut{s: s, wake: make(chan struct{}, 1), joins: make(chan presenceJoin, 256),
		lastSent: map[string]time.Time{}, tick: time.Minute}
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
		case j := <-p.joins:
			if err := p.introduce(j); err != nil {
				p.s.log.Warn("cannot send presence to a room's new member", "room", j.roomID, "err", err)
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

// presenceJoin is a join that makes users share a room: a local user's
// (user set), whose presence the room's other servers are to hear, or a
// remote server's first user's (server set), who is to hear the presence
// of the room's local users.
type presenceJoin struct {
	roomID, user, server string
}

// maxIntroduced bounds the local users whose presence a server that joins
// a room hears at once; the others' comes with their next change or ping.
const maxIntroduced = 1000

// introduceAfter: when a remote server's user joins, that server hears of
// our users' presence after these delays. The join is committed here
// while the joining server is still storing the room from our send_join
// answer, and until then it ignores the presence of users it shares no
// room with; the second try covers a large room's slow store.
var introduceAfter = []time.Duration{2 * time.Second, 30 * time.Second}

// joined looks at a join from the room output stream (Sender.handle) and
// schedules the presence it calls for.
func (p *presenceOut) joined(ctx context.Context, out *roomserver.OutputEvent) error {
	joiner := *out.StateKey
	server := roomserver.UserServer(joiner)
	j := presenceJoin{roomID: out.RoomID}
	if server == p.s.cfg.ServerName {
		j.user = joiner
	} else {
		// Only a server's first user: the others' joins (and every
		// profile change, also a join) bring that server nothing new.
		recs, err := p.s.cfg.DB.EventsByID(ctx, []string{out.EventID})
		if err != nil || len(recs) == 0 || recs[0].StateBeforeNID == 0 {
			return err
		}
		was, err := p.s.cfg.Roomserver.ServerJoinedAt(ctx, recs[0].StateBeforeNID, server)
		if err != nil || was {
			return err
		}
		j.server = server
		for _, d := range introduceAfter {
			time.AfterFunc(d, func() { p.schedule(j) })
		}
		return nil
	}
	p.schedule(j)
	return nil
}

// schedule hands j to run.
func (p *presenceOut) schedule(j presenceJoin) {
	select {
	case p.joins <- j:
	default:
		p.s.log.Warn("too many joins at once: presence waits for its next change", "room", j.roomID)
	}
}

// introduce sends the presence a join calls for.
func (p *presenceOut) introduce(j presenceJoin) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if j.user != "" {
		pr, err := p.s.cfg.DB.GetPresence(ctx, j.user)
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		if err != nil || pr.State == "offline" {
			return err
		}
		dests, err := p.s.RoomDestinations(ctx, j.roomID)
		if err != nil || len(dests) == 0 {
			return err
		}
		return p.s.QueueEDU(ctx, dests, presenceEDU(pr, p.s.cfg.Now()))
	}
	members, err := p.s.cfg.Roomserver.JoinedMembers(ctx, j.roomID)
	if err != nil {
		return err
	}
	sent := 0
	for _, m := range members {
		if roomserver.UserServer(m) != p.s.cfg.ServerName {
			continue
		}
		if sent == maxIntroduced {
			break
		}
		pr, err := p.s.cfg.DB.GetPresence(ctx, m)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if pr.State == "offline" {
			continue
		}
		if err := p.s.QueueEDU(ctx, []string{j.server}, presenceEDU(pr, p.s.cfg.Now())); err != nil {
			return err
		}
		sent++
	}
	return nil
}
