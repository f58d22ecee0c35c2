// Empty: this package exists only to build the protoc plugins of its dependencies.
