//! Printing for client verbs: aligned tables for people, JSON for scripts.

use serde_json::Value;

use super::Output;

/// A titled table under a describe's fields: (title, JSON pointer to the
/// rows, columns).
pub type Section<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

/// Prints each section of `value` whose rows are not empty, as a titled
/// table (tables only: JSON output already holds them).
pub fn print_sections(value: &Value, sections: &[Section<'_>]) {
    for (title, rows, cols) in sections {
        if value
            .pointer(rows)
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
        {
            println!("\n{title}:");
            print(Output::Table, value, Some(rows), cols);
        }
    }
}

/// Prints `value` as JSON, or `rows` (from `value`) as a table with `columns`
/// (header, JSON pointer) pairs.
pub fn print(output: Output, value: &Value, rows: Option<&str>, columns: &[(&str, &str)]) {
    match output {
        Output::Json => {
            println!(
                "{}",
                serde_json::to_string_pretty(value).unwrap_or_default()
            );
        }
        Output::Table => {
            let items: Vec<&Value> = match rows {
                Some(pointer) => value
                    .pointer(pointer)
                    .and_then(Value::as_array)
                    .map(|a| a.iter().collect())
                    .unwrap_or_default(),
                None => vec![value],
            };
            let mut table: Vec<Vec<String>> =
                vec![columns.iter().map(|c| c.0.to_owned()).collect()];
            for item in items {
                table.push(columns.iter().map(|c| cell(item.pointer(c.1))).collect());
            }
            print_table(&table);
        }
    }
}

/// Prints key/value lines, for single objects.
pub fn print_fields(output: Output, value: &Value, fields: &[(&str, &str)]) {
    match output {
        Output::Json => print(output, value, None, &[]),
        Output::Table => {
            let width = fields.iter().map(|f| f.0.len()).max().unwrap_or(0);
            for (name, pointer) in fields {
                if let Some(v) = value.pointer(pointer).filter(|v| !v.is_null()) {
                    println!("{name:width$}  {}", cell(Some(v)));
                }
            }
        }
    }
}

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn print_table(rows: &[Vec<String>]) {
    let n = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..n)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}
