package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// DefaultFederationIPRangeDenylist is the default of
// federation_ip_range_denylist: Synapse's DEFAULT_IP_RANGE_BLOCKLIST, the
// ranges that are private, loopback, link-local, reserved for tests or
// multicast. Without it, anyone could make this server connect to its own
// database or to the private network around it: the notary endpoints
// (/_matrix/key/v2/query) need no signature and connect to any server name,
// and a server name can be an IP literal with any port.
const DefaultFederationIPRangeDenylist = "127.0.0.0/8, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, " +
	"100.64.0.0/10, 192.0.0.0/24, 169.254.0.0/16, 192.88.99.0/24, 198.18.0.0/15, 192.0.2.0/24, " +
	"198.51.100.0/24, 203.0.113.0/24, 224.0.0.0/4, " +
	"::1/128, fe80::/10, fc00::/7, 2001:db8::/32, ff00::/8, fec0::/10"

// ParseIPRanges parses a comma-separated list of CIDR ranges ("10.0.0.0/8,
// fc00::/7"); a bare address is a range of that one address, as in
// Synapse. Host bits after the prefix are ignored (10.1.2.3/8 is
// 10.0.0.0/8). Empty entries are skipped.
func ParseIPRanges(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if strings.Contains(item, "/") {
			p, err := netip.ParsePrefix(item)
			if err != nil || p.Addr().Zone() != "" {
				return nil, fmt.Errorf("%q is not an IP range: list CIDRs separated by commas, e.g. 10.0.0.0/8, fc00::/7", item)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("%q is not an IP range: list CIDRs separated by commas, e.g. 10.0.0.0/8, fc00::/7", item)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// FederationIPRanges returns the parsed federation_ip_range_denylist and
// federation_ip_range_allowlist. Load has checked them; the error is for a
// Config built by hand.
func (c *Config) FederationIPRanges() (deny, allow []netip.Prefix, err error) {
	if deny, err = ParseIPRanges(c.FederationIPRangeDenylist); err != nil {
		return nil, nil, fmt.Errorf("federation_ip_range_denylist: %w", err)
	}
	if allow, err = ParseIPRanges(c.FederationIPRangeAllowlist); err != nil {
		return nil, nil, fmt.Errorf("federation_ip_range_allowlist: %w", err)
	}
	return deny, allow, nil
}

func checkIPRanges(get func(*Config) string) func(*Config) error {
	return func(c *Config) error {
		_, err := ParseIPRanges(get(c))
		return err
	}
}
