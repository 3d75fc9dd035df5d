package mediaapi

// The multipart/mixed answers of the federation media endpoints
// (server-server-api "Content Repository"): exactly two parts, a JSON
// object of metadata, then either the media's bytes with their
// Content-Type and Content-Disposition, or a Location header pointing at
// where the bytes are.

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
	"strings"
)

// maxMetadataBytes bounds the JSON part.
const maxMetadataBytes = 64 << 10

// federationMedia is the second part of a federation media answer.
type federationMedia struct {
	ContentType string
	FileName    string
	// Location, when set, is where the bytes are; Body is then nil.
	Location string
	Body     io.Reader
}

// parseFederationMultipart reads a multipart/mixed federation answer up to
// the start of the media's bytes, which the caller reads from Body (the
// body ends at the closing boundary).
func parseFederationMultipart(contentType string, body io.Reader) (*federationMedia, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, fmt.Errorf("content type %q: %w", contentType, err)
	}
	if !strings.EqualFold(mt, "multipart/mixed") {
		return nil, fmt.Errorf("content type %q is not multipart/mixed", mt)
	}
	boundary := params["boundary"]
	if boundary == "" || len(boundary) > 70 {
		return nil, errors.New("multipart answer without a valid boundary")
	}
	mr := multipart.NewReader(body, boundary)
	meta, err := mr.NextRawPart()
	if err != nil {
		return nil, fmt.Errorf("multipart metadata part: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(meta, maxMetadataBytes+1))
	if err != nil {
		return nil, fmt.Errorf("multipart metadata part: %w", err)
	}
	if len(data) > maxMetadataBytes {
		return nil, errors.New("multipart metadata part too large")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("multipart metadata part is not a JSON object: %w", err)
	}
	part, err := mr.NextRawPart()
	if err != nil {
		return nil, fmt.Errorf("multipart media part: %w", err)
	}
	fm := &federationMedia{ContentType: part.Header.Get("Content-Type")}
	if loc := part.Header.Get("Location"); loc != "" {
		fm.Location = loc
		return fm, nil
	}
	fm.FileName = fileNameFromDisposition(part.Header.Get("Content-Disposition"))
	fm.Body = part
	return fm, nil
}

// fileNameFromDisposition returns the file name of a Content-Disposition
// header (filename*, RFC 8187, preferred over filename), cleaned; "" for
// none.
func fileNameFromDisposition(v string) string {
	if v == "" {
		return ""
	}
	_, params, err := mime.ParseMediaType(v)
	if err != nil {
		return ""
	}
	return cleanFileName(params["filename"])
}

// multipartWriter writes a federation media answer.
type multipartWriter struct {
	boundary string
	w        *bufio.Writer
}

func newMultipartWriter(w io.Writer) *multipartWriter {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return &multipartWriter{boundary: hex.EncodeToString(b[:]), w: bufio.NewWriter(w)}
}

// ContentType is the answer's Content-Type header.
func (m *multipartWriter) ContentType() string { return "multipart/mixed; boundary=" + m.boundary }

// WriteHead writes the metadata part and the headers of the media part;
// the media's bytes follow, then Close.
func (m *multipartWriter) WriteHead(header textproto.MIMEHeader) error {
	fmt.Fprintf(m.w, "--%s\r\nContent-Type: application/json\r\n\r\n{}\r\n--%s\r\n", m.boundary, m.boundary)
	for k, vs := range header {
		for _, v := range vs {
			fmt.Fprintf(m.w, "%s: %s\r\n", k, v)
		}
	}
	_, err := m.w.WriteString("\r\n")
	return err
}

func (m *multipartWriter) Write(p []byte) (int, error) { return m.w.Write(p) }

// Close writes the closing boundary.
func (m *multipartWriter) Close() error {
	fmt.Fprintf(m.w, "\r\n--%s--\r\n", m.boundary)
	return m.w.Flush()
}
