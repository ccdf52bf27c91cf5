import Foundation
import StrictJSON

/// A JSON Schema (draft 2020-12) validator for the subset of keywords the schemas in `Reports/schema` use.
/// Written for the tests (no package dependency); any keyword outside the subset is reported by
/// `unsupportedKeywords`, so a schema cannot silently rely on a keyword this validator ignores.
package struct SchemaValidator {
    package static let supportedKeywords: Set<String> = [
        "$schema", "$id", "$defs", "$ref", "title", "description",
        "type", "enum", "const",
        "properties", "required", "additionalProperties", "minProperties",
        "items", "prefixItems", "minItems", "maxItems",
        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
        "minLength", "pattern",
        "oneOf", "anyOf",
    ]

    package let root: JSONValue

    package init(schema: JSONValue) {
        root = schema
    }

    package init(path: String) throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        root = try JSONParser().parse(bytes)
    }

    /// Every keyword in the schema this validator does not implement, with its location.
    package func unsupportedKeywords() -> [String] {
        var found: [String] = []
        func walk(_ schema: JSONValue, _ at: String) {
            guard case .object(let object) = schema else { return }
            for (key, value) in object {
                if !Self.supportedKeywords.contains(key) { found.append("\(at)/\(key)") }
                switch key {
                case "properties", "$defs":
                    for (name, sub) in value.objectValue ?? [:] { walk(sub, "\(at)/\(key)/\(name)") }
                case "items", "additionalProperties":
                    walk(value, "\(at)/\(key)")
                case "prefixItems", "oneOf", "anyOf":
                    for (i, sub) in (value.arrayValue ?? []).enumerated() { walk(sub, "\(at)/\(key)/\(i)") }
                default:
                    break
                }
            }
        }
        walk(root, "#")
        return found
    }

    /// The errors of `instance`, each as `<JSON path>: <rule>`; empty when it is valid.
    package func validate(_ instance: JSONValue) -> [String] {
        var errors: [String] = []
        check(instance, against: root, at: "$", errors: &errors)
        return errors
    }

    private func resolve(_ reference: String) -> JSONValue? {
        guard reference.hasPrefix("#") else { return nil }
        var node = root
        for part in reference.dropFirst().split(separator: "/") {
            let key = part.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            if let object = node.objectValue, let next = object[key] {
                node = next
            } else if let array = node.arrayValue, let index = Int(key), index < array.count {
                node = array[index]
            } else {
                return nil
            }
        }
        return node
    }

    package static func typeMatches(_ value: JSONValue, _ type: String) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("string", .string), ("array", .array), ("object", .object),
            ("number", .number):
            return true
        case ("integer", .number(let n)):
            let d = n.doubleValue
            return n.isIntegerLiteral || (d.isFinite && d.rounded() == d)
        default: return false
        }
    }

    /// JSON equality: numbers by value, objects regardless of key order.
    package static func equal(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.number(let x), .number(let y)): return x.literal == y.literal || x.doubleValue == y.doubleValue
        case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { equal($0, $1) }
        case (.object(let x), .object(let y)):
            return x.count == y.count && x.allSatisfy { key, value in y[key].map { equal(value, $0) } ?? false }
        default: return false
        }
    }

    private func check(_ value: JSONValue, against schema: JSONValue, at path: String, errors: inout [String]) {
        switch schema {
        case .bool(true): return
        case .bool(false):
            errors.append("\(path): not allowed here")
            return
        case .object: break
        default:
            errors.append("\(path): schema is not an object or boolean")
            return
        }
        guard let s = schema.objectValue else { return }

        if let reference = s["$ref"]?.stringValue {
            if let target = resolve(reference) {
                check(value, against: target, at: path, errors: &errors)
            } else {
                errors.append("\(path): unresolvable $ref \(reference)")
            }
        }
        if let type = s["type"] {
            let types = type.arrayValue?.compactMap(\.stringValue) ?? [type.stringValue ?? ""]
            if !types.contains(where: { Self.typeMatches(value, $0) }) {
                errors.append("\(path): \(value.typeName) is not of type \(types.joined(separator: " or "))")
                return
            }
        }
        if let constant = s["const"], !Self.equal(value, constant) {
            errors.append("\(path): must equal \(JSONWriter.compact.string(constant))")
        }
        if let options = s["enum"]?.arrayValue, !options.contains(where: { Self.equal(value, $0) }) {
            errors.append(
                "\(path): \(JSONWriter.compact.string(value)) is not one of \(JSONWriter.compact.string(.array(options)))"
            )
        }
        if case .number(let number) = value {
            let d = number.doubleValue
            if let m = s["minimum"]?.numberValue?.doubleValue, d < m {
                errors.append("\(path): \(number.literal) < minimum \(m)")
            }
            if let m = s["maximum"]?.numberValue?.doubleValue, d > m {
                errors.append("\(path): \(number.literal) > maximum \(m)")
            }
            if let m = s["exclusiveMinimum"]?.numberValue?.doubleValue, d <= m {
                errors.append("\(path): \(number.literal) ≤ exclusiveMinimum \(m)")
            }
            if let m = s["exclusiveMaximum"]?.numberValue?.doubleValue, d >= m {
                errors.append("\(path): \(number.literal) ≥ exclusiveMaximum \(m)")
            }
        }
        if case .string(let text) = value {
            if let m = s["minLength"]?.numberValue?.intValue, text.unicodeScalars.count < m {
                errors.append("\(path): shorter than \(m)")
            }
            if let pattern = s["pattern"]?.stringValue {
                if let regex = try? NSRegularExpression(pattern: pattern) {
                    let range = NSRange(text.startIndex..., in: text)
                    if regex.firstMatch(in: text, range: range) == nil {
                        errors.append("\(path): \"\(text)\" does not match \(pattern)")
                    }
                } else {
                    errors.append("\(path): invalid pattern \(pattern)")
                }
            }
        }
        if case .object(let object) = value {
            for key in s["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where object[key] == nil {
                errors.append("\(path): required property '\(key)' is missing")
            }
            if let m = s["minProperties"]?.numberValue?.intValue, object.count < m {
                errors.append("\(path): fewer than \(m) properties")
            }
            let properties = s["properties"]?.objectValue ?? [:]
            for (key, item) in object {
                if let sub = properties[key] {
                    check(item, against: sub, at: "\(path).\(key)", errors: &errors)
                } else if let additional = s["additionalProperties"] {
                    if case .bool(false) = additional {
                        errors.append("\(path): additional property '\(key)' is not allowed")
                    } else {
                        check(item, against: additional, at: "\(path).\(key)", errors: &errors)
                    }
                }
            }
        }
        if case .array(let items) = value {
            if let m = s["minItems"]?.numberValue?.intValue, items.count < m {
                errors.append("\(path): fewer than \(m) items")
            }
            if let m = s["maxItems"]?.numberValue?.intValue, items.count > m {
                errors.append("\(path): more than \(m) items")
            }
            let prefix = s["prefixItems"]?.arrayValue ?? []
            for (i, item) in items.enumerated() {
                if i < prefix.count {
                    check(item, against: prefix[i], at: "\(path)[\(i)]", errors: &errors)
                } else if let rest = s["items"] {
                    check(item, against: rest, at: "\(path)[\(i)]", errors: &errors)
                }
            }
        }
        if let options = s["oneOf"]?.arrayValue {
            let matches = options.filter { option in
                var sub: [String] = []
                check(value, against: option, at: path, errors: &sub)
                return sub.isEmpty
            }.count
            if matches != 1 { errors.append("\(path): matches \(matches) of the oneOf alternatives, not exactly 1") }
        }
        if let options = s["anyOf"]?.arrayValue {
            let any = options.contains { option in
                var sub: [String] = []
                check(value, against: option, at: path, errors: &sub)
                return sub.isEmpty
            }
            if !any { errors.append("\(path): matches none of the anyOf alternatives") }
        }
    }
}
