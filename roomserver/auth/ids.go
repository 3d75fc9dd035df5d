package auth

import "strings"

// domainOf returns the server name of a user, room or event ID of the form
// sigil localpart ":" domain: everything after the first colon, as Synapse's
// get_domain_from_id does. ok is false when there is no colon.
func domainOf(id string) (domain string, ok bool) {
	i := strings.IndexByte(id, ':')
	if i < 0 {
		return "", false
	}
	return id[i+1:], true
}

// sameDomain reports whether two IDs carry the same, present, server name.
func sameDomain(a, b string) bool {
	da, ok := domainOf(a)
	if !ok {
		return false
	}
	db, ok := domainOf(b)
	return ok && da == db
}

// looseUserID is the user ID test of the m.room.power_levels "users" rule:
// a "@" sigil and a colon separating localpart and domain. It is deliberately
// as lenient as Synapse (UserID.from_string), because being stricter than the
// server that accepted an event would split the room.
func looseUserID(s string) bool {
	return len(s) > 1 && s[0] == '@' && strings.IndexByte(s, ':') > 0
}

// validUserID is the user ID validation applied to senders: the appendices'
// grammar, with the historical localparts every server must still accept
// (anything but ':' and NUL, possibly empty), a valid server name, and at
// most 255 bytes. Room version 12 applies it to additional_creators.
func validUserID(s string) bool {
	if len(s) < 3 || len(s) > 255 || s[0] != '@' {
		return false
	}
	local, server, ok := strings.Cut(s[1:], ":")
	if !ok || strings.IndexByte(local, 0) >= 0 {
		return false
	}
	return validServerName(server)
}

// validServerName implements the appendices' server_name grammar:
// hostname [ ":" port ], where hostname is a DNS name or IPv4 literal
// (1*255 of ALPHA / DIGIT / "-" / ".") or "[" IPv6 literal "]".
func validServerName(s string) bool {
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return false
		}
		v6 := s[1:end]
		if len(v6) < 2 || len(v6) > 45 {
			return false
		}
		for i := 0; i < len(v6); i++ {
			c := v6[i]
			if !(isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.') {
				return false
			}
		}
		rest := s[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return false
			}
			return validPort(rest[1:])
		}
		return true
	}
	if i := strings.IndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i+1:]
		if !validPort(port) {
			return false
		}
	}
	if len(host) == 0 || len(host) > 255 {
		return false
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !(isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func validPort(p string) bool {
	if len(p) < 1 || len(p) > 5 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if !isDigit(p[i]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
