package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestReadDockerfileReadsTheFinalStage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "Dockerfile")
	err := os.WriteFile(path, []byte(`FROM golang AS build
COPY . /src/
USER builder
# a comment
FROM distroless
COPY --from=build /out/ /usr/local/bin/
COPY campaigns.yaml /etc/postback/campaigns.yaml
COPY --from=build --chown=65532:65532 /state/ /var/lib/postback/
USER nonroot
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	img, err := ReadDockerfile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []Copy{{Dest: "/usr/local/bin/"}, {Dest: "/etc/postback/campaigns.yaml"}, {Dest: "/var/lib/postback/", Chown: "65532:65532"}}
	if !slices.Equal(img.Copied, want) {
		t.Errorf("copied %+v, want %+v (the build stage's /src/ left out)", img.Copied, want)
	}
	if img.User != "nonroot" {
		t.Errorf("user %q, want nonroot", img.User)
	}
	for file, want := range map[string]bool{
		"/usr/local/bin/ingest":         true,
		"/etc/postback/campaigns.yaml":  true,
		"/etc/postback/campaigns.yml":   false,
		"/src/deploy/local/config.yaml": false,
	} {
		if got := img.Holds(file); got != want {
			t.Errorf("Holds(%s) = %v, want %v", file, got, want)
		}
	}
	for dir, want := range map[string]bool{
		"/var/lib/postback/attribution": true,
		"/var/lib/postback":             true,
		"/var/lib":                      false,
		"/etc/postback":                 false, // copied as root's
	} {
		if got := img.OwnsDir(dir); got != want {
			t.Errorf("OwnsDir(%s) = %v, want %v", dir, got, want)
		}
	}
}

func TestReadDockerfileOfTheImage(t *testing.T) {
	img, err := ReadDockerfile("docker/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	// The services run as the image's user; the manifests' runAsUser 65532 is distroless's nonroot.
	if img.User != "nonroot" {
		t.Errorf("the image runs as %q, want nonroot", img.User)
	}
	if !img.Holds("/usr/local/bin/postbackctl") || !img.Holds("/etc/postback/campaigns.yaml") {
		t.Errorf("the image lacks the binaries or the example campaigns: %v", img.Copied)
	}
}
