/// wirelab's version, written here and nowhere else: `wirelab --version`
/// prints it. Raise it when a release changes what users rely on (verbs,
/// options, file formats).
///
/// No git commit is stamped in: SwiftPM (6.3) has no dependable way to do
/// it at build time (a plugin's prebuild command runs only when a build is
/// planned, and its build commands are not reliably ordered before this
/// target's compile), so a stamped hash could name the wrong commit.
public enum WirelabVersion {
    public static let number = "0.1.0"
}
