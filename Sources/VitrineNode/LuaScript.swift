import Synchronization

/// A Lua script the shared tier runs, and its SHA1 once a server has said it (`SCRIPT LOAD`).
///
/// The hash is a function of the text, the same on every server: it is kept with the script, not
/// per server, and a server that does not have the script yet answers `NOSCRIPT` to its hash and
/// is sent the text. Looked up by identity: the lookup script runs on every L2 lookup, and
/// hashing its text for a dictionary cost more than the rest of building the command.
final class LuaScript: Sendable {
    let text: String
    private let knownHash = Mutex<String?>(nil)

    init(_ text: String) {
        self.text = text
    }

    /// The SHA1 a server gave for the text, once one has.
    var hash: String? {
        get { knownHash.withLock { $0 } }
        set { knownHash.withLock { $0 = newValue } }
    }
}
