import VitrineCore

/// What a configuration reload did: `SIGHUP`'s log line, `POST /reload`'s answer.
package struct ReloadReport: Sendable, Equatable {
    /// Whether the file was taken (false: it was refused, and nothing changed).
    package let applied: Bool
    /// Configurations loaded since start, this one included when applied.
    package let generation: Int
    /// Sections applied live (`origins`, `routes`, `listings`).
    package let changed: [String]
    /// Sections that changed in the file but keep their running values until a restart.
    package let needsRestart: [String]
    /// Why the file was refused.
    package let error: String?

    package init(applied: Bool, generation: Int, changed: [String], needsRestart: [String], error: String?) {
        self.applied = applied
        self.generation = generation
        self.changed = changed
        self.needsRestart = needsRestart
        self.error = error
    }

    /// A reload that changed nothing, and why; `generation` is the one still running.
    package static func refused(generation: Int, _ error: String) -> ReloadReport {
        ReloadReport(applied: false, generation: generation, changed: [], needsRestart: [], error: error)
    }

    var json: String {
        func list(_ items: [String]) -> String { "[" + items.map { "\"\($0)\"" }.joined(separator: ",") + "]" }
        var text = "{\"applied\":\(applied),\"generation\":\(generation),\"changed\":\(list(changed)),\"needs_restart\":\(list(needsRestart))"
        if let error { text += ",\"error\":\"" + error.jsonEscaped + "\"" }
        return text + "}"
    }
}
