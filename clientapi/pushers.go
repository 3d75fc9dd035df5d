package clientapi

// Pushers (client-server-api "Push Notifications", pusher.yaml): GET
// /pushers and POST /pushers/set. The pushes themselves are sent by the
// notifier (syncapi/push) from the durable queue.

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

// gatewayPath is the one path a push gateway URL may have (pusher.yaml:
// "MUST be an HTTPS URL with a path of /_matrix/push/v1/notify").
const gatewayPath = "/_matrix/push/v1/notify"

// Limits of pusher.yaml.
const (
	maxAppIDChars    = 64
	maxPushkeyBytes  = 512
	maxPusherStrings = 1024 // the other strings: not in the spec, but bounded
)

func (a *API) registerPushers(r *mux.Router) {
	r.HandleFunc("/_matrix/client/v3/pushers", a.auth.Required(a.getPushers)).Methods(http.MethodGet)
	r.HandleFunc("/_matrix/client/v3/pushers/set", a.auth.Required(a.setPusher)).Methods(http.MethodPost)
}

type pusherJSON struct {
	Pushkey           string          `json:"pushkey"`
	Kind              string          `json:"kind"`
	AppID             string          `json:"app_id"`
	AppDisplayName    string          `json:"app_display_name"`
	DeviceDisplayName string          `json:"device_display_name"`
	ProfileTag        string          `json:"profile_tag,omitempty"`
	Lang              string          `json:"lang"`
	Data              json.RawMessage `json:"data"`
}

// getPushers serves GET /pushers.
func (a *API) getPushers(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	ps, err := a.db.Pushers(r.Context(), d.UserID)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	out := make([]pusherJSON, 0, len(ps))
	for _, p := range ps {
		out = append(out, pusherJSON{
			Pushkey: p.Pushkey, Kind: p.Kind, AppID: p.AppID, AppDisplayName: p.AppDisplayName,
			DeviceDisplayName: p.DeviceDisplayName, ProfileTag: p.ProfileTag, Lang: p.Lang, Data: p.Data,
		})
	}
	writeOK(w, r, map[string]any{"pushers": out})
}

// setPusher serves POST /pushers/set: kind null deletes the pusher, kind
// "http" creates or updates it.
func (a *API) setPusher(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	var in struct {
		Pushkey           *string         `json:"pushkey"`
		Kind              json.RawMessage `json:"kind"`
		AppID             *string         `json:"app_id"`
		AppDisplayName    *string         `json:"app_display_name"`
		DeviceDisplayName *string         `json:"device_display_name"`
		ProfileTag        *string         `json:"profile_tag"`
		Lang              *string         `json:"lang"`
		Data              json.RawMessage `json:"data"`
		Append            bool            `json:"append"`
	}
	if err := httputil.ReadJSON(r, &in); err != nil {
		writeErr(w, r, err)
		return
	}
	var missing []string
	for _, f := range []struct {
		name    string
		present bool
	}{{"kind", in.Kind != nil}, {"app_id", in.AppID != nil}, {"pushkey", in.Pushkey != nil}} {
		if !f.present {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		writeErr(w, r, httputil.MissingParam("missing parameters: "+strings.Join(missing, ", ")))
		return
	}
	if n := utf8.RuneCountInString(*in.AppID); n == 0 || n > maxAppIDChars {
		writeErr(w, r, httputil.InvalidParam("app_id must be 1 to 64 characters long"))
		return
	}
	if n := len(*in.Pushkey); n == 0 || n > maxPushkeyBytes {
		writeErr(w, r, httputil.InvalidParam("pushkey must be 1 to 512 bytes long"))
		return
	}
	if string(in.Kind) == "null" {
		if _, err := a.db.DeletePusher(r.Context(), d.UserID, *in.AppID, *in.Pushkey); err != nil {
			writeErr(w, r, err)
			return
		}
		writeOK(w, r, struct{}{})
		return
	}
	var kind string
	if json.Unmarshal(in.Kind, &kind) != nil {
		writeErr(w, r, httputil.BadJSON("kind must be a string or null"))
		return
	}
	if kind != "http" {
		writeErr(w, r, httputil.InvalidParam(`unsupported pusher kind "`+kind+`": this server has http pushers only`))
		return
	}
	for _, f := range []struct {
		name    string
		present bool
	}{{"app_display_name", in.AppDisplayName != nil}, {"device_display_name", in.DeviceDisplayName != nil},
		{"lang", in.Lang != nil}, {"data", in.Data != nil}} {
		if !f.present {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		writeErr(w, r, httputil.MissingParam("missing parameters: "+strings.Join(missing, ", ")))
		return
	}
	for _, s := range []*string{in.AppDisplayName, in.DeviceDisplayName, in.Lang, in.ProfileTag} {
		if s != nil && len(*s) > maxPusherStrings {
			writeErr(w, r, httputil.InvalidParam("pusher strings are limited to 1024 bytes"))
			return
		}
	}
	var data struct {
		URL    *string         `json:"url"`
		Format json.RawMessage `json:"format"`
	}
	if len(in.Data) == 0 || in.Data[0] != '{' || json.Unmarshal(in.Data, &data) != nil {
		writeErr(w, r, httputil.BadJSON("data must be an object"))
		return
	}
	if data.URL == nil {
		writeErr(w, r, httputil.MissingParam("data.url is required for an http pusher"))
		return
	}
	if err := a.checkGatewayURL(*data.URL); err != nil {
		writeErr(w, r, err)
		return
	}
	if data.Format != nil && string(data.Format) != `"event_id_only"` {
		writeErr(w, r, httputil.InvalidParam(`data.format must be "event_id_only" or absent`))
		return
	}
	p := storage.Pusher{
		UserID: d.UserID, AppID: *in.AppID, Pushkey: *in.Pushkey, Kind: kind,
		AppDisplayName: *in.AppDisplayName, DeviceDisplayName: *in.DeviceDisplayName, Lang: *in.Lang,
		Data: compactJSON(in.Data), URL: *data.URL, DeviceID: d.DeviceID, PushkeyTS: time.Now().UnixMilli(),
	}
	if in.ProfileTag != nil {
		p.ProfileTag = *in.ProfileTag
	}
	if err := a.db.SetPusher(r.Context(), p, in.Append); err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, struct{}{})
}

// checkGatewayURL checks a push gateway URL: HTTPS, the notify path, and,
// unless push_allow_private_addresses, not a name or address of a private
// network. (Names are checked again when connecting, on the addresses
// they resolve to.)
func (a *API) checkGatewayURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil {
		return httputil.InvalidParam("data.url is not an absolute URL")
	}
	if u.Scheme != "https" {
		return httputil.InvalidParam("data.url must be an https URL")
	}
	if u.Path != gatewayPath || u.RawQuery != "" || u.Fragment != "" {
		return httputil.InvalidParam("data.url must have the path " + gatewayPath)
	}
	if a.cfg.PushAllowPrivateAddresses {
		return nil
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		if ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
			ip.IsMulticast() || ip.IsUnspecified() || ip.IsInterfaceLocalMulticast() {
			return httputil.InvalidParam("data.url points at a private or reserved address, which this server does not push to")
		}
		return nil
	}
	if h := strings.ToLower(strings.TrimSuffix(host, ".")); h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return httputil.InvalidParam("data.url points at this host, which this server does not push to")
	}
	return nil
}

// compactJSON drops the insignificant whitespace of valid JSON.
func compactJSON(b []byte) []byte {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return b
	}
	return buf.Bytes()
}
