package pdu

import (
	"errors"
	"strings"
	"testing"
)

func TestCanonicalJSONEncoding(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"whitespace everywhere", " \t\r\n[ 1 , { \"a\" : [ ] } ,\n\"x\" ] \n", `[1,{"a":[]},"x"]`},
		{"scalar top level", ` "s" `, `"s"`},
		{"literals", `[true,false,null]`, `[true,false,null]`},
		{"short escapes kept", `"\b\t\n\f\r"`, `"\b\t\n\f\r"`},
		{"quote and backslash", `"\"\\"`, `"\"\\"`},
		{"solidus unescaped", `"\/"`, `"/"`},
		{"other control characters as lower-case \\u00XX", `"\u0000\u0001\u001F\u000B"`, `"\u0000\u0001\u001f\u000b"`},
		{"escaped printable ASCII decoded", `"\u0041\u007e"`, `"A~"`},
		{"DEL not escaped", "\"\u007f\"", "\"\u007f\""},
		{"line separator not escaped", `"\u2028"`, "\"\u2028\""},
		{"surrogate pair", `"\ud83d\ude00"`, `"😀"`},
		{"U+FFFD itself is fine", "\"\uFFFD\"", "\"\uFFFD\""},
		{"sort by code point not UTF-16", `{"\uff61":1,"😀":2}`, `{"｡":1,"😀":2}`},
		{"sort by decoded key", `{"A":1,"\n":2}`, `{"\n":2,"A":1}`},
		{"nested sort", `{"b":{"d":1,"c":2},"a":[{"z":1,"y":2}]}`, `{"a":[{"y":2,"z":1}],"b":{"c":2,"d":1}}`},
		{"negative zero", `-0`, `0`},
		{"big integer kept (lenient)", `123456789012345678901234567890`, `123456789012345678901234567890`},
		{"integral float as integer", `[1.0,-2.50e1,1E2,0.0,-0.0]`, `[1,-25,100,0,0]`},
		{"float as Python repr", `[1.5,-0.25,0.0001,0.00001,1e16,2.5e-7,123456789.125]`, `[1.5,-0.25,0.0001,1e-05,1e+16,2.5e-07,123456789.125]`},
		{"integral float beyond 2^53", `[9007199254740992.0,1e300]`, `[9007199254740992.0,1e+300]`},
		{"safe integer bounds", `[9007199254740991,-9007199254740991]`, `[9007199254740991,-9007199254740991]`},
	} {
		got, err := CanonicalJSON([]byte(tc.in))
		if err != nil {
			t.Errorf("%s: CanonicalJSON(%s): %v", tc.name, tc.in, err)
			continue
		}
		if string(got) != tc.want {
			t.Errorf("%s: CanonicalJSON(%s) = %s, want %s", tc.name, tc.in, got, tc.want)
		}
	}
}

func TestCanonicalJSONStrict(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"a":-0,"b":9007199254740991,"c":-9007199254740991}`, `{"a":0,"b":9007199254740991,"c":-9007199254740991}`},
		{`[0,1,-1,42]`, `[0,1,-1,42]`},
	} {
		got, err := CanonicalJSONStrict([]byte(tc.in))
		if err != nil || string(got) != tc.want {
			t.Errorf("CanonicalJSONStrict(%s) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ in, reason string }{
		{`9007199254740992`, "outside"},
		{`-9007199254740992`, "outside"},
		{`{"a":[123456789012345678901]}`, "outside"},
		{`1.0`, "not an integer"},
		{`1e10`, "not an integer"},
		{`{"a":-0.5}`, "not an integer"},
	} {
		_, err := CanonicalJSONStrict([]byte(tc.in))
		var je *JSONError
		if !errors.As(err, &je) || !strings.Contains(je.Reason, tc.reason) {
			t.Errorf("CanonicalJSONStrict(%s) error = %v, want a JSONError about %q", tc.in, err, tc.reason)
		}
	}
}

func TestCanonicalJSONRefuses(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	deepObj := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }
	for _, tc := range []struct {
		name, in, reason string
		offset           int
	}{
		{"empty", ``, "unexpected end", 0},
		{"only space", `  `, "unexpected end", 2},
		{"trailing data", `{} {}`, "after the JSON value", 3},
		{"duplicate key", `{"a":1,"a":2}`, `duplicate object key "a"`, 13},
		{"duplicate key after sorting", `{"b":1,"a":1,"b":2}`, `duplicate object key "b"`, 19},
		{"duplicate key via escape", `{"a":1,"\u0061":2}`, `duplicate object key "a"`, 18},
		{"nested duplicate", `[{"x":{"k":1,"k":1}}]`, `duplicate object key "k"`, 19},
		{"too deep arrays", deep(MaxNestingDepth + 1), "nesting deeper than 1000", MaxNestingDepth},
		{"too deep objects", deepObj(MaxNestingDepth + 1), "nesting deeper than 1000", 5 * MaxNestingDepth},
		{"bad literal", `tru`, "invalid literal", 0},
		{"bad character", `{"a":x}`, "unexpected character 'x'", 5},
		{"non-string key", `{1:2}`, "expected a string object key", 1},
		{"missing colon", `{"a" 1}`, "expected ':'", 5},
		{"missing comma in object", `{"a":1 "b":2}`, "expected ',' or '}'", 7},
		{"missing comma in array", `[1 2]`, "expected ',' or ']'", 3},
		{"trailing comma in array", `[1,]`, "unexpected character ']'", 3},
		{"trailing comma in object", `{"a":1,}`, "expected a string object key", 7},
		{"unterminated array", `[1`, "unterminated array", 2},
		{"unterminated object", `{"a":1`, "unterminated object", 6},
		{"unterminated string", `"abc`, "unterminated string", 4},
		{"unterminated escaped string", `"a\n`, "unterminated string", 4},
		{"unterminated after backslash", `"a\`, "unterminated string", 2},
		{"raw control character", "\"a\tb\"", "control character", 2},
		{"raw control character after escape", "\"\\n\x01\"", "control character", 3},
		{"invalid UTF-8", "\"\xff\"", "invalid UTF-8", 1},
		{"invalid UTF-8 after escape", "\"\\n\xc3\"", "invalid UTF-8", 3},
		{"UTF-8 encoded surrogate", "\"\xed\xa0\x80\"", "invalid UTF-8", 1},
		{"lone high surrogate", `"\ud800"`, "lone high surrogate", 1},
		{"high surrogate then non-surrogate", `"\ud800\u0041"`, "lone high surrogate", 1},
		{"lone low surrogate", `"\udc00"`, "lone low surrogate", 1},
		{"bad \\u escape", `"\u12g4"`, "invalid \\u escape", 1},
		{"short \\u escape", `"\u12"`, "invalid \\u escape", 1},
		{"unknown escape", `"\x"`, `invalid escape \x`, 1},
		{"leading zero", `01`, "after the JSON value", 1},
		{"plus sign", `+1`, "unexpected character '+'", 0},
		{"bare minus", `-`, "invalid number", 1},
		{"minus letter", `-a`, "invalid number", 1},
		{"no fraction digits", `1.`, "no digits after '.'", 2},
		{"no exponent digits", `1e+`, "no digits in exponent", 3},
		{"float overflow", `1e400`, "out of range", 0},
		{"NaN", `NaN`, "unexpected character 'N'", 0},
	} {
		_, err := CanonicalJSON([]byte(tc.in))
		var je *JSONError
		if !errors.As(err, &je) {
			t.Errorf("%s: CanonicalJSON(%.40q) = %v, want a JSONError", tc.name, tc.in, err)
			continue
		}
		if !strings.Contains(je.Reason, tc.reason) || je.Offset != tc.offset {
			t.Errorf("%s: error %q at %d, want %q at %d", tc.name, je.Reason, je.Offset, tc.reason, tc.offset)
		}
		if !strings.Contains(err.Error(), "bad JSON at offset") {
			t.Errorf("%s: error text %q", tc.name, err)
		}
	}
	// Exactly MaxNestingDepth levels is allowed.
	if _, err := CanonicalJSON([]byte(deep(MaxNestingDepth))); err != nil {
		t.Errorf("depth %d refused: %v", MaxNestingDepth, err)
	}
}

func TestCanonicalJSONIsIdempotent(t *testing.T) {
	in := `{"z":{"b":[1,2,{"y":"\u00e9\n"}],"a":null},"a":"x\"y","m":-0,"f":2.5}`
	once, err := CanonicalJSON([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	twice, err := CanonicalJSON(once)
	if err != nil || string(twice) != string(once) {
		t.Errorf("not idempotent: %s then %s (%v)", once, twice, err)
	}
}
