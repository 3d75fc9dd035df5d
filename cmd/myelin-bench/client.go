package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"
)

// client is a minimal Client-Server API client: just what the scenarios
// need, over one shared HTTP transport.
type client struct {
	base   string
	http   *http.Client
	secret string // registration shared secret; empty = open registration
	txn    atomic.Int64
}

// user is a logged-in account.
type user struct {
	ID    string
	Token string
}

// apiError is a non-2xx answer.
type apiError struct {
	Status int
	Body   string
}

func (e *apiError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Status, e.Body) }

// do sends a JSON request and decodes a JSON answer into out (if non-nil).
func (c *client) do(ctx context.Context, method, path, token string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return &apiError{Status: resp.StatusCode, Body: string(data)}
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// register creates an account: through the shared-secret admin API when a
// secret is set (Synapse, Dendrite and Myelin all serve it), else through
// open registration with m.login.dummy.
func (c *client) register(ctx context.Context, localpart, password string) (*user, error) {
	var out struct {
		UserID      string `json:"user_id"`
		AccessToken string `json:"access_token"`
	}
	if c.secret != "" {
		var nonce struct {
			Nonce string `json:"nonce"`
		}
		if err := c.do(ctx, "GET", "/_synapse/admin/v1/register", "", nil, &nonce); err != nil {
			return nil, fmt.Errorf("register nonce: %w", err)
		}
		mac := hmac.New(sha1.New, []byte(c.secret))
		mac.Write([]byte(nonce.Nonce + "\x00" + localpart + "\x00" + password + "\x00notadmin"))
		body := map[string]any{"nonce": nonce.Nonce, "username": localpart, "password": password,
			"admin": false, "mac": hex.EncodeToString(mac.Sum(nil))}
		if err := c.do(ctx, "POST", "/_synapse/admin/v1/register", "", body, &out); err != nil {
			return nil, fmt.Errorf("register %s: %w", localpart, err)
		}
	} else {
		body := map[string]any{"username": localpart, "password": password,
			"auth": map[string]any{"type": "m.login.dummy"}}
		if err := c.do(ctx, "POST", "/_matrix/client/v3/register", "", body, &out); err != nil {
			return nil, fmt.Errorf("register %s: %w", localpart, err)
		}
	}
	return &user{ID: out.UserID, Token: out.AccessToken}, nil
}

func (c *client) createRoom(ctx context.Context, u *user, body map[string]any) (string, error) {
	var out struct {
		RoomID string `json:"room_id"`
	}
	err := c.do(ctx, "POST", "/_matrix/client/v3/createRoom", u.Token, body, &out)
	return out.RoomID, err
}

func (c *client) join(ctx context.Context, u *user, roomID string) error {
	return c.do(ctx, "POST", "/_matrix/client/v3/join/"+url.PathEscape(roomID), u.Token, map[string]any{}, nil)
}

// send sends an m.room.message and returns its event ID.
func (c *client) send(ctx context.Context, u *user, roomID, text string) (string, error) {
	txn := strconv.FormatInt(c.txn.Add(1), 10) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	var out struct {
		EventID string `json:"event_id"`
	}
	err := c.do(ctx, "PUT", "/_matrix/client/v3/rooms/"+url.PathEscape(roomID)+"/send/m.room.message/"+txn,
		u.Token, map[string]any{"msgtype": "m.text", "body": text}, &out)
	return out.EventID, err
}

// syncResponse is the part of a /sync answer the scenarios read.
type syncResponse struct {
	NextBatch string `json:"next_batch"`
	Rooms     struct {
		Join map[string]struct {
			Timeline struct {
				Limited   bool   `json:"limited"`
				PrevBatch string `json:"prev_batch"`
				Events    []struct {
					EventID string `json:"event_id"`
					Content struct {
						Body string `json:"body"`
					} `json:"content"`
				} `json:"events"`
			} `json:"timeline"`
		} `json:"join"`
	} `json:"rooms"`
}

// sync performs one /sync; timeout is the long-poll in milliseconds.
func (c *client) sync(ctx context.Context, u *user, since string, timeoutMS int, filter string) (*syncResponse, error) {
	q := url.Values{"timeout": {strconv.Itoa(timeoutMS)}}
	if since != "" {
		q.Set("since", since)
	}
	if filter != "" {
		q.Set("filter", filter)
	}
	var out syncResponse
	err := c.do(ctx, "GET", "/_matrix/client/v3/sync?"+q.Encode(), u.Token, nil, &out)
	return &out, err
}
