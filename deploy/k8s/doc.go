// Package k8s holds no code: this directory holds the Kubernetes manifests of
// the pipeline, a kustomize base (base/, applied by kubectl apply -k
// deploy/k8s) and its overlays (overlays/secured), and the package's test
// builds each of them and checks the objects against the Kubernetes API
// types, the services' config reference and the image.
package k8s
