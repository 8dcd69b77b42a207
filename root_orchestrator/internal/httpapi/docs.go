package httpapi

import (
	"bytes"
	"compress/gzip"
	"embed"
	"io"
	"net/http"
	"path"
	"strings"

	"github.com/labstack/echo/v4"
)

// docs holds the OpenAPI description and a vendored Swagger UI (see
// docs/VENDORED), gzip-compressed to keep the binary small.
//
//go:embed docs/openapi.json docs/*.gz
var docs embed.FS

// OpenAPISpec returns the OpenAPI description served at /api/openapi.json.
func OpenAPISpec() []byte {
	b, _ := docs.ReadFile("docs/openapi.json")
	return b
}

func openAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, OpenAPISpec())
}

const docsHTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Thicket root API</title>
<link rel="stylesheet" href="/api/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/api/docs/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({url: "/api/openapi.json", dom_id: "#swagger-ui", deepLinking: true, persistAuthorization: true});
</script>
</body>
</html>
`

func docsPage(c echo.Context) error {
	return c.HTML(http.StatusOK, docsHTML)
}

// docsAsset serves a compressed Swagger UI file, decompressing it for the
// rare client that does not accept gzip.
func docsAsset(c echo.Context) error {
	name := path.Clean(c.Param("*"))
	gz, err := docs.ReadFile("docs/" + name + ".gz")
	if err != nil || strings.Contains(name, "/") {
		return errNotFound
	}
	ctype := "text/css; charset=utf-8"
	if strings.HasSuffix(name, ".js") {
		ctype = "text/javascript; charset=utf-8"
	}
	h := c.Response().Header()
	h.Set(echo.HeaderCacheControl, "public, max-age=86400")
	h.Add(echo.HeaderVary, echo.HeaderAcceptEncoding)
	if strings.Contains(c.Request().Header.Get(echo.HeaderAcceptEncoding), "gzip") {
		h.Set(echo.HeaderContentEncoding, "gzip")
		return c.Blob(http.StatusOK, ctype, gz)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return err
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, ctype, plain)
}
