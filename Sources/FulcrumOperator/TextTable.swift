/// The CLI's tables: rows of cells as lines whose columns are padded to their widest cell, two
/// spaces apart (`trimmed`: without the spaces after the last cell).
enum TextTable {
    static func lines(_ rows: [[String]], trimmed: Bool = false) -> [String] {
        guard let first = rows.first else { return [] }
        let widths = first.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            let line = row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
            return trimmed ? line.trimmingCharacters(in: .whitespaces) : line
        }
    }
}
