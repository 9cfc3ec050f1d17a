/// This build's version, as `vitrine --version` prints it. Bumped when a release is cut.
public enum VitrineVersion {
    public static let current = "0.1.0"
}
