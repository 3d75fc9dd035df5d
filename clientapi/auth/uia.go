package auth

// The User-Interactive Authentication API (client-server-api
// "User-Interactive Authentication API"): an endpoint that needs it
// describes its flows in an Operation, and CheckUIA either lets the request
// through or answers 401 with the flows, the session and the stages
// completed so far. Sessions are stored in the database, so the requests of
// one session may reach different processes.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

// Stage types this server implements.
const (
	StageDummy             = "m.login.dummy"
	StagePassword          = "m.login.password"
	StageRegistrationToken = "m.login.registration_token"
)

// SessionLifetime is how long a UIA session stays usable after it starts.
// Synapse keeps sessions for two days; a registration or password change
// that takes longer starts again. Expired sessions give back their pending
// registration token uses.
const SessionLifetime = 48 * time.Hour

// Operation is what a UIA-protected request wants to do.
type Operation struct {
	// Name identifies the operation within a session ("register",
	// "password @alice:example.org", ...): a session cannot authorise a
	// different operation from the one it started for.
	Name string
	// Flows lists the acceptable sequences of stages.
	Flows [][]string
	// Params are the per-stage parameters shown to the client.
	Params map[string]any
	// Localpart is the user who must prove who they are with
	// m.login.password; "" for registration.
	Localpart string
}

// Passed is the outcome of a completed UIA: pass it to FinishUIA in the
// transaction that performs the operation.
type Passed struct {
	SessionID string
	// RegistrationToken is the token a registration used, or "".
	RegistrationToken string
}

// Response is the 401 answer of an incomplete UIA. It is an error so that
// CheckUIA can return it; WriteError sends it.
type Response struct {
	Flows     []flowJSON     `json:"flows"`
	Params    map[string]any `json:"params"`
	Session   string         `json:"session"`
	Completed []string       `json:"completed"`
	// Errcode and Err say why the last stage failed, when it did.
	Errcode string `json:"errcode,omitempty"`
	Err     string `json:"error,omitempty"`
}

type flowJSON struct {
	Stages []string `json:"stages"`
}

func (r *Response) Error() string {
	if r.Errcode != "" {
		return "user-interactive auth: " + r.Errcode + ": " + r.Err
	}
	return "user-interactive auth required"
}

// WriteError answers with err: a *Response as the UIA 401, anything else
// through httputil.WriteError.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	if ur, ok := errors.AsType[*Response](err); ok {
		httputil.WriteJSON(w, r, http.StatusUnauthorized, ur)
		return
	}
	httputil.WriteError(w, r, err)
}

// authDict is the fields of the request's "auth" object every stage has.
type authDict struct {
	Type    string `json:"type"`
	Session string `json:"session"`
}

// CheckUIA runs one step of user-interactive auth for op. authRaw is the
// request's "auth" value (absent, null or an object). It returns Passed
// when a flow is complete; otherwise a *Response (401) naming the session,
// or another error: 400 M_BAD_JSON for a malformed auth object, 400
// M_UNKNOWN for an unknown or expired session, 403 M_FORBIDDEN for a
// session of another operation.
func (a *Authenticator) CheckUIA(ctx context.Context, op *Operation, authRaw json.RawMessage) (*Passed, error) {
	if len(authRaw) == 0 || string(authRaw) == "null" {
		id := NewSessionID()
		err := a.db.WithTx(ctx, func(tx *storage.Tx) error {
			if err := tx.ExpireUIASessions(ctx, time.Now().Add(-SessionLifetime).UnixMilli(), 20); err != nil {
				return err
			}
			return tx.CreateUIASession(ctx, id, op.Name)
		})
		if err != nil {
			return nil, err
		}
		return nil, op.response(id, nil, nil)
	}
	var ad authDict
	if err := json.Unmarshal(authRaw, &ad); err != nil {
		return nil, httputil.BadJSON(`"auth" must be an object with string "type" and "session"`)
	}

	// The slow part of a stage, bcrypt, runs before the transaction so that
	// it holds no database lock.
	var stageErr *httputil.Error
	if ad.Type != "" && !op.offers(ad.Type) {
		stageErr = httputil.NewError(http.StatusUnauthorized, httputil.CodeUnrecognized, "the stage "+ad.Type+" is not offered for this request")
	} else if ad.Type == StagePassword {
		stageErr = a.checkPasswordStage(ctx, op, authRaw)
	}

	sid, fresh := ad.Session, ad.Session == ""
	if fresh {
		// A client may attempt a stage without asking for a session first.
		sid = NewSessionID()
	}
	var (
		passed    *Passed
		completed []string
	)
	err := a.db.WithTx(ctx, func(tx *storage.Tx) error {
		passed = nil
		s, err := a.loadSession(ctx, tx, op, sid, fresh)
		if err != nil {
			return err
		}
		if ad.Type != "" && stageErr == nil && !slices.Contains(s.Completed, ad.Type) {
			var tokenErr *httputil.Error
			if ad.Type == StageRegistrationToken {
				if tokenErr, err = checkTokenStage(ctx, tx, s, authRaw); err != nil {
					return err
				}
			}
			if tokenErr != nil {
				completed = s.Completed
				return tokenErr
			}
			s.Completed = append(s.Completed, ad.Type)
			if err := tx.UpdateUIASession(ctx, s); err != nil {
				return err
			}
		}
		completed = s.Completed
		if stageErr == nil && op.complete(s.Completed) {
			passed = &Passed{SessionID: s.ID, RegistrationToken: s.RegistrationToken}
		}
		return nil
	})
	if he, ok := errors.AsType[*httputil.Error](err); ok && he.Status == http.StatusUnauthorized {
		// A failed token stage rolled back its transaction; a session
		// created by it is created again, without the stage.
		stageErr = he
		if fresh {
			err = a.db.WithTx(ctx, func(tx *storage.Tx) error { return tx.CreateUIASession(ctx, sid, op.Name) })
		} else {
			err = nil
		}
	}
	if err != nil {
		return nil, err
	}
	if passed != nil {
		return passed, nil
	}
	return nil, op.response(sid, completed, stageErr)
}

// loadSession returns session sid of op, creating it when fresh.
func (a *Authenticator) loadSession(ctx context.Context, tx *storage.Tx, op *Operation, sid string, fresh bool) (*storage.UIASession, error) {
	if fresh {
		if err := tx.CreateUIASession(ctx, sid, op.Name); err != nil {
			return nil, err
		}
		return &storage.UIASession{ID: sid, Operation: op.Name}, nil
	}
	s, err := tx.GetUIASession(ctx, sid)
	if errors.Is(err, storage.ErrNotFound) {
		// As Synapse: 400 M_UNKNOWN. Completed sessions are deleted, so a
		// replayed session lands here too.
		return nil, httputil.NewError(http.StatusBadRequest, httputil.CodeUnknown, "unknown or expired auth session")
	}
	if err != nil {
		return nil, err
	}
	if time.Since(time.UnixMilli(s.CreatedTS)) > SessionLifetime {
		return nil, httputil.NewError(http.StatusBadRequest, httputil.CodeUnknown, "unknown or expired auth session")
	}
	if s.Operation != op.Name {
		return nil, httputil.Forbidden("the auth session was started for another request")
	}
	return s, nil
}

// offers reports whether any flow of op has the stage.
func (op *Operation) offers(stage string) bool {
	for _, f := range op.Flows {
		if slices.Contains(f, stage) {
			return true
		}
	}
	return false
}

// complete reports whether the completed stages include every stage of
// one of op's flows.
func (op *Operation) complete(done []string) bool {
	for _, f := range op.Flows {
		all := true
		for _, st := range f {
			if !slices.Contains(done, st) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// response is the 401 of an incomplete UIA; failed says why the last stage
// failed, or is nil.
func (op *Operation) response(sid string, completed []string, failed *httputil.Error) *Response {
	r := &Response{Session: sid, Params: op.Params, Completed: completed}
	if r.Params == nil {
		r.Params = map[string]any{}
	}
	if r.Completed == nil {
		r.Completed = []string{}
	}
	for _, f := range op.Flows {
		r.Flows = append(r.Flows, flowJSON{Stages: f})
	}
	if failed != nil {
		r.Errcode, r.Err = failed.Code, failed.Message
	}
	return r
}

// checkPasswordStage checks an m.login.password stage: the identifier must
// name op's user and the password must be theirs. Failures are 401s with
// M_FORBIDDEN (or the identifier's own error code), as the spec's example.
func (a *Authenticator) checkPasswordStage(ctx context.Context, op *Operation, authRaw json.RawMessage) *httputil.Error {
	user, password, err := parsePasswordFields(authRaw)
	if err != nil {
		he, _ := errors.AsType[*httputil.Error](err)
		return httputil.NewError(http.StatusUnauthorized, he.Code, he.Message)
	}
	lp, ok := a.localpartOf(user)
	if !ok || lp != op.Localpart {
		CheckPassword("", password) // same time as a real check
		return httputil.NewError(http.StatusUnauthorized, httputil.CodeForbidden, "the identifier does not name the user making the request")
	}
	acct, err := a.db.GetAccount(ctx, lp)
	if err != nil || !CheckPassword(acct.PasswordHash, password) {
		return httputil.NewError(http.StatusUnauthorized, httputil.CodeForbidden, "invalid password")
	}
	return nil
}

// checkTokenStage checks an m.login.registration_token stage in tx and, on
// success, records the token on the session and counts a pending use. The
// returned *httputil.Error is a failed stage (a 401); error is a fault.
func checkTokenStage(ctx context.Context, tx *storage.Tx, s *storage.UIASession, authRaw json.RawMessage) (*httputil.Error, error) {
	var f struct {
		Token *string `json:"token"`
	}
	if err := json.Unmarshal(authRaw, &f); err != nil {
		return httputil.NewError(http.StatusUnauthorized, httputil.CodeBadJSON, `"token" must be a string`), nil
	}
	if f.Token == nil || *f.Token == "" {
		return httputil.NewError(http.StatusUnauthorized, httputil.CodeMissingParam, `the registration token stage needs a "token"`), nil
	}
	t, err := tx.GetRegistrationToken(ctx, *f.Token)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && !t.Valid(time.Now().UnixMilli())) {
		// Synapse's answer to an invalid token.
		return httputil.NewError(http.StatusUnauthorized, httputil.CodeUnauthorized, "invalid registration token"), nil
	}
	if err != nil {
		return nil, err
	}
	if err := tx.AddRegistrationTokenPending(ctx, t.Token, 1); err != nil {
		return nil, err
	}
	s.RegistrationToken = t.Token
	return nil, nil
}

// FinishUIA ends a passed session within the transaction that performs the
// operation: the session is deleted, so it cannot authorise anything again,
// and a registration token's pending use becomes a completed one.
func FinishUIA(ctx context.Context, tx *storage.Tx, p *Passed) error {
	if p.RegistrationToken != "" {
		if err := tx.CompleteRegistrationToken(ctx, p.RegistrationToken); err != nil {
			return err
		}
	}
	return tx.DeleteUIASession(ctx, p.SessionID, true)
}
