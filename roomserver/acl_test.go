package roomserver

import "testing"

func TestServerACLAllows(t *testing.T) {
	for _, c := range []struct {
		acl, server string
		want        bool
	}{
		{`{"allow":["*"]}`, "good.example", true},
		{`{"allow":["*"],"deny":["evil.com"]}`, "evil.com:8448", false},
		{`{"allow":["*"],"deny":["*.evil.com"]}`, "a.b.evil.com", false},
		{`{"allow":["*"],"deny":["*.evil.com"]}`, "evil.com", true},
		{`{"allow":["*"],"deny":["EVIL.com"]}`, "evil.COM", false},
		{`{"allow":["good.example"]}`, "other.example", false},
		{`{"allow":["goo?.example"]}`, "good.example:1234", true},
		{`{"deny":[]}`, "good.example", false},
		{`{"allow":"*"}`, "good.example", false},
		{`{"allow":[1,"*"]}`, "good.example", true},
		{`{"allow":["*"],"allow_ip_literals":false}`, "127.0.0.1:8448", false},
		{`{"allow":["*"],"allow_ip_literals":false}`, "[::1]:8448", false},
		{`{"allow":["*"],"allow_ip_literals":"no"}`, "127.0.0.1", true},
		{`{"allow":["*"]}`, "127.0.0.1:8448", true},
		{`{"allow":["127.0.0.1"]}`, "127.0.0.1:8448", true},
		{`{"allow":["[::1]"]}`, "[::1]:8448", true},
		{`{}`, "good.example", false},
	} {
		if got := ServerACLAllows([]byte(c.acl), c.server); got != c.want {
			t.Errorf("%s for %s: %v, want %v", c.acl, c.server, got, c.want)
		}
	}
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"", "", true}, {"*", "", true}, {"?", "", false}, {"a*b*c", "aXbYc", true}, {"a*b*c", "aXbY", false},
		{"*a", "bbba", true}, {"a?c", "abc", true}, {"a?c", "ac", false}, {"**", "x", true},
	} {
		if got := GlobMatch(c.p, c.s); got != c.want {
			t.Errorf("GlobMatch(%q, %q) = %v", c.p, c.s, got)
		}
	}
}
