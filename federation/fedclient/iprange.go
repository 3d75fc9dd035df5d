package fedclient

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"github.com/myelin-chat/myelin/internal/config"
)

// Which addresses outbound federation may connect to. Server names come
// from anyone: an unsigned notary query (/_matrix/key/v2/query) names any
// server, a server name can be an IP literal with any port, and DNS,
// /.well-known delegation and SRV records can point anywhere. Without a
// check, anyone could make this server connect to its own database port
// or to the private network around it (SSRF). As in Synapse
// (federation_ip_range_blacklist), private and reserved ranges are refused
// by default.
//
// The check runs when connecting (net.Dialer.Control), on the address
// actually dialled after every resolution step, so that a host name
// resolving to a private address, or resolving differently the second
// time (DNS rebinding), cannot get around it.

// ErrAddressRefused is returned (wrapped) for a connection to an address
// in the denylist and not in the allowlist; no connection was attempted.
var ErrAddressRefused = errors.New("address refused by federation_ip_range_denylist")

// IPFilter decides which addresses outbound federation may connect to.
type IPFilter struct {
	deny, allow []netip.Prefix
}

// NewIPFilter refuses the addresses in deny unless they are in allow.
// Ranges are IPv4 or IPv6 CIDRs (config.ParseIPRanges).
func NewIPFilter(deny, allow []netip.Prefix) *IPFilter {
	return &IPFilter{deny: deny, allow: allow}
}

// DefaultIPFilter refuses config.DefaultFederationIPRangeDenylist (Synapse's
// default list) and exempts nothing.
func DefaultIPFilter() *IPFilter {
	deny, err := config.ParseIPRanges(config.DefaultFederationIPRangeDenylist)
	if err != nil {
		panic("fedclient: the default denylist does not parse: " + err.Error())
	}
	return NewIPFilter(deny, nil)
}

// Check returns nil when ip may be connected to, else an error wrapping
// ErrAddressRefused.
//
// An IPv6 address that carries an IPv4 address (IPv4-mapped ::ffff:a.b.c.d,
// IPv4-compatible ::a.b.c.d, 6to4 2002:aabb:ccdd::/48, NAT64 64:ff9b::/96)
// is checked as that IPv4 address too: ::ffff:127.0.0.1 reaches
// 127.0.0.1, and the others may reach it through a relay or translator.
// Synapse extends its lists the same way (except NAT64). The unspecified
// addresses 0.0.0.0 and :: are always refused: connecting to them reaches
// this host.
func (f *IPFilter) Check(ip netip.Addr) error {
	ip = ip.WithZone("") // netip.Prefix.Contains is false for any zoned address
	forms := []netip.Addr{ip.Unmap()}
	if v4, ok := embeddedIPv4(ip); ok && v4 != forms[0] {
		forms = append(forms, v4)
	}
	refused := false
	for _, a := range forms {
		if a.IsUnspecified() {
			return fmt.Errorf("%w: %s is the unspecified address", ErrAddressRefused, ip)
		}
		if inAny(f.deny, a) {
			refused = true
		}
	}
	if !refused {
		return nil
	}
	for _, a := range forms {
		if inAny(f.allow, a) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s (exempt it with federation_ip_range_allowlist if it is meant to be reached)", ErrAddressRefused, ip)
}

func inAny(ranges []netip.Prefix, a netip.Addr) bool {
	for _, p := range ranges {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// nat64 is the well-known prefix of RFC 6052.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// embeddedIPv4 returns the IPv4 address an IPv6 address carries, if any.
func embeddedIPv4(ip netip.Addr) (netip.Addr, bool) {
	if ip.Is4In6() {
		return ip.Unmap(), true
	}
	if !ip.Is6() {
		return netip.Addr{}, false
	}
	b := ip.As16()
	switch {
	case [12]byte(b[:12]) == [12]byte{}: // IPv4-compatible, RFC 4291 2.5.5.1
		return netip.AddrFrom4([4]byte(b[12:])), true
	case b[0] == 0x20 && b[1] == 0x02: // 6to4, RFC 3056
		return netip.AddrFrom4([4]byte(b[2:6])), true
	case nat64.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:])), true
	}
	return netip.Addr{}, false
}

// Control is f's check as a net.Dialer Control function. The dialer calls
// it after resolving and before connecting, with address the IP and port
// about to be connected to; an error stops the connection.
func (f *IPFilter) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q is not an IP address and port", ErrAddressRefused, address)
	}
	return f.Check(ap.Addr())
}
