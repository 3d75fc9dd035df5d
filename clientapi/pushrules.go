package clientapi

// Push rules (client-server-api "Push Rules: API", pushrules.yaml). A
// user's rules are their m.push_rules account data, which their /sync
// carries; every change rewrites it in one transaction and wakes their
// syncs and the notifier (which drops their compiled rules). The rules
// themselves, their defaults and the edits are internal/pushrules.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/internal/pushrules"
	"github.com/myelin-chat/myelin/storage"
)

// pushRulesType is the account data type of a user's push rules.
const pushRulesType = "m.push_rules"

func (a *API) registerPush(r *mux.Router) {
	const base = "/_matrix/client/v3/pushrules"
	get := func(path string, h func(http.ResponseWriter, *http.Request, *auth.Device)) {
		r.HandleFunc(base+path, a.auth.Required(h)).Methods(http.MethodGet)
	}
	get("", a.getAllPushRules)
	get("/", a.getAllPushRules)
	get("/{scope}", a.getPushRuleset)
	get("/{scope}/", a.getPushRuleset)
	get("/{scope}/{kind}", a.getPushRuleKind)
	get("/{scope}/{kind}/", a.getPushRuleKind)
	rule := base + "/{scope}/{kind}/{ruleId}"
	r.HandleFunc(rule, a.auth.Required(a.getPushRule)).Methods(http.MethodGet)
	r.HandleFunc(rule, a.auth.Required(a.putPushRule)).Methods(http.MethodPut)
	r.HandleFunc(rule, a.auth.Required(a.deletePushRule)).Methods(http.MethodDelete)
	r.HandleFunc(rule+"/enabled", a.auth.Required(a.getPushRuleEnabled)).Methods(http.MethodGet)
	r.HandleFunc(rule+"/enabled", a.auth.Required(a.putPushRuleEnabled)).Methods(http.MethodPut)
	r.HandleFunc(rule+"/actions", a.auth.Required(a.getPushRuleActions)).Methods(http.MethodGet)
	r.HandleFunc(rule+"/actions", a.auth.Required(a.putPushRuleActions)).Methods(http.MethodPut)
	a.registerPushers(r)
	a.registerNotifications(r)
}

// pushRules returns the user's effective ruleset.
func (a *API) pushRules(ctx context.Context, userID string) (*pushrules.Ruleset, error) {
	content, err := a.db.GetAccountData(ctx, userID, "", pushRulesType)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	return pushrules.Load(content, userID), nil
}

// editPushRules applies edit to the user's ruleset and stores the result,
// in one transaction.
func (a *API) editPushRules(ctx context.Context, userID string, edit func(*pushrules.Ruleset) error) error {
	var pos int64
	err := a.db.WithTx(ctx, func(tx *storage.Tx) error {
		content, err := tx.GetAccountData(ctx, userID, "", pushRulesType)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		rs := pushrules.Load(content, userID)
		if err := edit(rs); err != nil {
			return err
		}
		pos, err = tx.SetAccountData(ctx, userID, "", pushRulesType, rs.AccountData())
		return err
	})
	if err != nil {
		return pushRuleError(err)
	}
	if a.bus != nil {
		if err := bus.NotifySync(ctx, a.bus, bus.SyncNotification{
			Pos: pos, UserIDs: []string{userID}, Kind: bus.SyncKindAccountData,
		}); err != nil {
			return err
		}
	}
	return nil
}

// pushRuleError turns the errors of internal/pushrules into the spec's.
func pushRuleError(err error) error {
	var ie *pushrules.InvalidError
	switch {
	case errors.Is(err, pushrules.ErrNotFound):
		return httputil.NotFound("push rule not found")
	case errors.Is(err, pushrules.ErrRelativeNotFound):
		return httputil.NewError(http.StatusBadRequest, httputil.CodeUnknown, err.Error())
	case errors.As(err, &ie):
		return httputil.NewError(http.StatusBadRequest, ie.Code, ie.Msg)
	}
	return err
}

// pushRulePath reads {scope}, {kind} and {ruleId} (those present).
func pushRulePath(r *http.Request) (kind pushrules.Kind, ruleID string, err error) {
	if s := httputil.PathVar(r, "scope"); s != "global" {
		return "", "", httputil.InvalidParam(`unknown push rule scope "` + s + `": the only scope is "global"`)
	}
	vars := mux.Vars(r)
	if _, ok := vars["kind"]; ok {
		k := httputil.PathVar(r, "kind")
		if !pushrules.ValidKind(k) {
			return "", "", httputil.InvalidParam(`unknown push rule kind "` + k + `"`)
		}
		kind = pushrules.Kind(k)
	}
	if _, ok := vars["ruleId"]; ok {
		ruleID = httputil.PathVar(r, "ruleId")
	}
	return kind, ruleID, nil
}

// getAllPushRules serves GET /pushrules/.
func (a *API) getAllPushRules(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	rs, err := a.pushRules(r.Context(), d.UserID)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, map[string]*pushrules.Ruleset{"global": rs})
}

// getPushRuleset serves GET /pushrules/global/.
func (a *API) getPushRuleset(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	if _, _, err := pushRulePath(r); err != nil {
		writeErr(w, r, err)
		return
	}
	rs, err := a.pushRules(r.Context(), d.UserID)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, rs)
}

// getPushRuleKind serves GET /pushrules/global/{kind}/ (not in the spec
// any more, but clients written for older versions ask for it).
func (a *API) getPushRuleKind(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	kind, _, err := pushRulePath(r)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	rs, err := a.pushRules(r.Context(), d.UserID)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	rules := rs.Rules(kind)
	if rules == nil {
		rules = []*pushrules.Rule{}
	}
	writeOK(w, r, rules)
}

// findPushRule is the rule of the request's path.
func (a *API) findPushRule(r *http.Request, d *auth.Device) (*pushrules.Rule, error) {
	kind, ruleID, err := pushRulePath(r)
	if err != nil {
		return nil, err
	}
	rs, err := a.pushRules(r.Context(), d.UserID)
	if err != nil {
		return nil, err
	}
	rule := rs.Find(kind, ruleID)
	if rule == nil {
		return nil, pushRuleError(pushrules.ErrNotFound)
	}
	return rule, nil
}

// getPushRule serves GET /pushrules/global/{kind}/{ruleId}.
func (a *API) getPushRule(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	rule, err := a.findPushRule(r, d)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, rule)
}

// putPushRule serves PUT /pushrules/global/{kind}/{ruleId}.
func (a *API) putPushRule(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	kind, ruleID, err := pushRulePath(r)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	// The rule ID first: a server-default ID is refused whatever the body.
	if err := pushrules.CheckUserRuleID(kind, ruleID); err != nil {
		writeErr(w, r, pushRuleError(err))
		return
	}
	body, err := httputil.ReadJSONObject(r)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	nr, err := pushrules.ParseNewRule(kind, body)
	if err != nil {
		writeErr(w, r, pushRuleError(err))
		return
	}
	q := r.URL.Query()
	err = a.editPushRules(r.Context(), d.UserID, func(rs *pushrules.Ruleset) error {
		return rs.Put(kind, ruleID, nr, q.Get("before"), q.Get("after"))
	})
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, struct{}{})
}

// deletePushRule serves DELETE /pushrules/global/{kind}/{ruleId}.
func (a *API) deletePushRule(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	kind, ruleID, err := pushRulePath(r)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	if err := a.editPushRules(r.Context(), d.UserID, func(rs *pushrules.Ruleset) error {
		return rs.Delete(kind, ruleID)
	}); err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, struct{}{})
}

// getPushRuleEnabled serves GET /pushrules/global/{kind}/{ruleId}/enabled.
func (a *API) getPushRuleEnabled(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	rule, err := a.findPushRule(r, d)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, map[string]bool{"enabled": rule.Enabled})
}

// putPushRuleEnabled serves PUT /pushrules/global/{kind}/{ruleId}/enabled.
func (a *API) putPushRuleEnabled(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	kind, ruleID, err := pushRulePath(r)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	var in struct {
		Enabled *bool `json:"enabled"`
	}
	if err := httputil.ReadJSON(r, &in); err != nil {
		writeErr(w, r, err)
		return
	}
	if in.Enabled == nil {
		writeErr(w, r, httputil.MissingParam("enabled is required"))
		return
	}
	if err := a.editPushRules(r.Context(), d.UserID, func(rs *pushrules.Ruleset) error {
		return rs.SetEnabled(kind, ruleID, *in.Enabled)
	}); err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, struct{}{})
}

// getPushRuleActions serves GET /pushrules/global/{kind}/{ruleId}/actions.
func (a *API) getPushRuleActions(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	rule, err := a.findPushRule(r, d)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	actions := rule.Actions
	if actions == nil {
		actions = []pushrules.Action{}
	}
	writeOK(w, r, map[string]any{"actions": actions})
}

// putPushRuleActions serves PUT /pushrules/global/{kind}/{ruleId}/actions.
func (a *API) putPushRuleActions(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	kind, ruleID, err := pushRulePath(r)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	var in struct {
		Actions *[]json.RawMessage `json:"actions"`
	}
	if err := httputil.ReadJSON(r, &in); err != nil {
		writeErr(w, r, err)
		return
	}
	if in.Actions == nil {
		writeErr(w, r, httputil.MissingParam("actions is required"))
		return
	}
	actions, err := pushrules.ParseActions(*in.Actions)
	if err != nil {
		writeErr(w, r, pushRuleError(err))
		return
	}
	if err := a.editPushRules(r.Context(), d.UserID, func(rs *pushrules.Ruleset) error {
		return rs.SetActions(kind, ruleID, actions)
	}); err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, struct{}{})
}
