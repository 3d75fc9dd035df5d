package roomserver

// Server ACLs (m.room.server_acl; server-server-api "Server Access Control
// Lists (ACLs)"), with no I/O: whether a server may take part in a room.

import (
	"net/netip"
	"strings"

	"github.com/tidwall/gjson"
)

// ServerACLAllows applies the content of a room's m.room.server_acl event
// to a server name, in the spec's order: an IP literal is denied when
// allow_ip_literals is false; then a match in deny denies, a match in
// allow allows, and anything else is denied. The port is ignored; globs
// match case-insensitively, as Synapse. Entries that are not strings, and
// allow or deny that are not lists, count as absent. With no ACL event in
// the room, do not call this: every server is allowed.
func ServerACLAllows(content []byte, serverName string) bool {
	host := hostOf(serverName)
	if gjson.GetBytes(content, "allow_ip_literals").Type == gjson.False && isIPLiteral(host) {
		return false
	}
	if globListMatches(gjson.GetBytes(content, "deny"), host) {
		return false
	}
	return globListMatches(gjson.GetBytes(content, "allow"), host)
}

// hostOf strips the port from a server name ("[::1]:8448" → "[::1]").
func hostOf(serverName string) string {
	if strings.HasPrefix(serverName, "[") {
		if i := strings.IndexByte(serverName, ']'); i >= 0 {
			return serverName[:i+1]
		}
		return serverName
	}
	host, _, _ := strings.Cut(serverName, ":")
	return host
}

func isIPLiteral(host string) bool {
	_, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return err == nil
}

func globListMatches(list gjson.Result, host string) bool {
	if !list.IsArray() {
		return false
	}
	for _, g := range list.Array() {
		if g.Type == gjson.String && GlobMatch(strings.ToLower(g.Str), strings.ToLower(host)) {
			return true
		}
	}
	return false
}

// GlobMatch reports whether s matches the glob pattern (appendices "Glob-style
// matching": * is any run of characters, ? one character), in time
// O(len(pattern)·len(s)) whatever the pattern.
func GlobMatch(pattern, s string) bool {
	p, str := []rune(pattern), []rune(s)
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(str) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == str[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			// Let the last * take one more character.
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
