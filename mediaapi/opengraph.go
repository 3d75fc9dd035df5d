package mediaapi

// Reading a page's preview data: OpenGraph <meta property="og:..."> tags
// (https://ogp.me), falling back to the HTML <title> and <meta
// name="description">. Pure: it parses bytes it is given.

import (
	"bytes"
	"net/url"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

const (
	// maxOGProperties bounds the properties kept from one page.
	maxOGProperties = 50
	// maxOGValueRunes bounds one property's value.
	maxOGValueRunes = 1000
)

// openGraph extracts the preview properties of an HTML page. og:image,
// when present, is made absolute against base.
func openGraph(page []byte, base *url.URL) map[string]string {
	og := map[string]string{}
	var title, description strings.Builder
	inTitle, titleDone := false, false
	z := html.NewTokenizer(bytes.NewReader(page))
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return finishOpenGraph(og, title.String(), description.String(), base)
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			switch atom.Lookup(name) {
			case atom.Title:
				inTitle = !titleDone && tt == html.StartTagToken
			case atom.Meta:
				if !hasAttr {
					continue
				}
				var prop, nameAttr, content string
				for {
					k, v, more := z.TagAttr()
					switch string(k) {
					case "property":
						prop = strings.ToLower(strings.TrimSpace(string(v)))
					case "name":
						nameAttr = strings.ToLower(strings.TrimSpace(string(v)))
					case "content":
						content = string(v)
					}
					if !more {
						break
					}
				}
				key := prop
				if key == "" && strings.HasPrefix(nameAttr, "og:") {
					key = nameAttr // some pages use name= for OpenGraph
				}
				switch {
				case strings.HasPrefix(key, "og:") && len(key) <= 64:
					if _, dup := og[key]; !dup && len(og) < maxOGProperties {
						og[key] = cleanOGValue(content)
					}
				case nameAttr == "description" && description.Len() == 0:
					description.WriteString(content)
				}
			case atom.Body:
				// OpenGraph lives in <head>; a body can be megabytes.
				if len(og) > 0 || titleDone {
					return finishOpenGraph(og, title.String(), description.String(), base)
				}
			}
		case html.EndTagToken:
			if name, _ := z.TagName(); atom.Lookup(name) == atom.Title && inTitle {
				inTitle, titleDone = false, true
			}
		case html.TextToken:
			if inTitle && title.Len() < 4*maxOGValueRunes {
				title.Write(z.Text())
			}
		}
	}
}

func finishOpenGraph(og map[string]string, title, description string, base *url.URL) map[string]string {
	if _, ok := og["og:title"]; !ok {
		if t := cleanOGValue(title); t != "" {
			og["og:title"] = t
		}
	}
	if _, ok := og["og:description"]; !ok {
		if d := cleanOGValue(description); d != "" {
			og["og:description"] = d
		}
	}
	for _, k := range []string{"og:image", "og:image:url", "og:image:secure_url"} {
		if v, ok := og[k]; ok && v != "" {
			if u, err := base.Parse(v); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
				og["og:image"] = u.String()
				break
			}
			delete(og, k)
		}
	}
	for k, v := range og {
		if v == "" {
			delete(og, k)
		}
	}
	return og
}

// cleanOGValue makes a value valid UTF-8 with collapsed white space, at
// most maxOGValueRunes long.
func cleanOGValue(s string) string {
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "")), " ")
	if utf8.RuneCountInString(s) > maxOGValueRunes {
		r := []rune(s)
		s = string(r[:maxOGValueRunes-1]) + "…"
	}
	return s
}
