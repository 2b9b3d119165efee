// Package deploy describes, for the tests of the deployment files, what
// they share: the image deploy/docker/Dockerfile builds. Its test checks
// docker-compose.yml; deploy/k8s holds the Kubernetes manifests and theirs.
package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// Image is what the final stage of a Dockerfile puts in the image.
type Image struct {
	// Copied are its COPY instructions.
	Copied []Copy
	// User is the user its processes run as (USER), "" for root.
	User string
}

// Copy is one COPY instruction.
type Copy struct {
	Dest  string // a directory ends in "/"
	Chown string // --chown=USER[:GROUP], "" when root keeps them
}

// ReadDockerfile reads the final stage of the Dockerfile at path. It knows
// the instructions deploy/docker/Dockerfile uses, one per line.
func ReadDockerfile(path string) (Image, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Image{}, fmt.Errorf("dockerfile: %w", err)
	}
	var img Image
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "FROM": // a new stage: only the last one is the image
			img = Image{}
		case "COPY":
			var args []string
			var cp Copy
			for _, f := range fields[1:] {
				if v, ok := strings.CutPrefix(f, "--chown="); ok {
					cp.Chown = v
				} else if !strings.HasPrefix(f, "--") {
					args = append(args, f)
				}
			}
			if len(args) < 2 {
				return Image{}, fmt.Errorf("dockerfile %s: COPY without source and destination: %s", path, sc.Text())
			}
			cp.Dest = args[len(args)-1]
			img.Copied = append(img.Copied, cp)
		case "USER":
			if len(fields) != 2 {
				return Image{}, fmt.Errorf("dockerfile %s: %s", path, sc.Text())
			}
			img.User = fields[1]
		}
	}
	if err := sc.Err(); err != nil {
		return Image{}, fmt.Errorf("dockerfile %s: %w", path, err)
	}
	return img, nil
}

// Holds reports whether file (an absolute path) was copied into the image,
// itself or under a copied directory.
func (img Image) Holds(file string) bool {
	for _, c := range img.Copied {
		if c.under(file) {
			return true
		}
	}
	return false
}

// OwnsDir reports whether dir was copied into the image owned by a user
// other than root, itself or under a directory copied so: only then can a
// non-root user write there, and Docker gives a named volume mounted there
// the image's ownership (a mount point the image lacks is root's).
func (img Image) OwnsDir(dir string) bool {
	for _, c := range img.Copied {
		owner, _, _ := strings.Cut(c.Chown, ":")
		if owner != "" && owner != "root" && owner != "0" && (c.under(dir) || c.Dest == dir+"/") {
			return true
		}
	}
	return false
}

// under reports whether file is c's destination or lies in it.
func (c Copy) under(file string) bool {
	return c.Dest == file || (strings.HasSuffix(c.Dest, "/") && strings.HasPrefix(file, c.Dest))
}
