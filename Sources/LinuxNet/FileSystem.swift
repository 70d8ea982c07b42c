// File operations Foundation has no exact counterpart for.
import Glibc

public enum FileSystem {
    /// Renames FROM to TO, replacing TO if it exists: rename(2), atomic on
    /// one file system (FileManager.moveItem refuses an existing TO).
    public static func rename(_ from: String, to: String) throws(LinuxNetError) {
        try systemCall("rename", OperationContext("renaming \(from) to \(to)")) { Glibc.rename(from, to) }
    }
}
