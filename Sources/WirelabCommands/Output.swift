import Foundation

func printError(_ message: String) {
    FileHandle.standardError.write((message.hasSuffix("\n") ? message : message + "\n").data(using: .utf8)!)
}

