//! Firehose's `CopyCommand`: the table (`DataTableName`), its column list (`DataTableColumns`)
//! and Redshift COPY's optional parameters (`CopyOptions`), parsed once, when a delivery stream
//! is created or updated, into a [`CopyCommand`].
//!
//! `CopyOptions` is read with Redshift's grammar (keywords in any case, `AS` optional, string
//! arguments in single quotes with `''` for a quote, a trailing `;` allowed). Supported:
//!
//! | option | effect |
//! | --- | --- |
//! | `JSON 'auto'`, `FORMAT AS JSON 'auto'`, `JSON` | JSON records; top-level keys matched to column names exactly (Redshift: case-sensitive, and its column names are lowercase) |
//! | `JSON 'auto ignorecase'` | the same, keys matched to column names ignoring case |
//! | `CSV [QUOTE [AS] 'q']` | CSV (RFC 4180 quoting, quote `"` by default, delimiter `,` by default) |
//! | (no format) | Redshift's default text format: fields split at the delimiter (`\|` by default), no quoting |
//! | `DELIMITER [AS] 'c'` | one ASCII character; `'\t'` and octal `'\ddd'` are read as in Redshift |
//! | `GZIP` | the object is GZIP-compressed (one or several members) |
//! | `TIMEFORMAT 'auto'` / `'YYYY-MM-DD HH:MI:SS'` | ISO 8601 timestamps (`T` or space, fraction, `Z` or an offset) |
//! | `TIMEFORMAT 'epochsecs'` / `'epochmillisecs'` | numbers (or numeric strings) of seconds / milliseconds since 1970 |
//! | `DATEFORMAT 'auto'` / `'YYYY-MM-DD'` | ISO dates (a timestamp's date part is taken) |
//! | `IGNOREHEADER n`, `IGNOREBLANKLINES`, `FILLRECORD`, `NULL AS 's'`, `ESCAPE`, `REMOVEQUOTES` | delimited input, as in Redshift |
//! | `EMPTYASNULL`, `BLANKSASNULL`, `TRIMBLANKS`, `TRUNCATECOLUMNS` | character columns, as in Redshift (lengths counted in characters, as PostgreSQL does) |
//! | `ACCEPTINVCHARS ['c']` | invalid UTF-8 in delimited input replaced by `c` (`?` by default) |
//! | `MAXERROR n` | up to `n` records that do not convert are skipped (reported in the outcome); a JSON syntax error always fails the object |
//! | `EXPLICIT_IDS` | identity columns are loaded when no column list is given |
//! | `ROUNDEC`, `ACCEPTANYDATE`, `COMPUPDATE`, `STATUPDATE`, `COMPROWS n`, `REGION 'r'` | accepted, no effect (planner hints, or what PostgreSQL does anyway: numeric values are rounded to the column's scale) |
//!
//! Refused with a message: JSONPaths files, `noshred`, FIXEDWIDTH, AVRO, PARQUET, ORC,
//! SHAPEFILE, BZIP2, LZOP, ZSTD, multi-character delimiters, other time and date formats,
//! NOLOAD, and the source parameters Firehose supplies itself (MANIFEST, IAM_ROLE,
//! CREDENTIALS, ...).

use crate::error::CopyCommandError;
use crate::limits;

/// The input format of the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Redshift's default: delimited text without quoting.
    Text,
    /// CSV with the given quote character.
    Csv { quote: u8 },
    /// JSON records (`'auto'`), keys matched to column names exactly or ignoring case.
    Json { ignore_case: bool },
}

/// How timestamp (and, for epochs, date) values are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    /// ISO 8601 text (`'auto'`, `'YYYY-MM-DD HH:MI:SS'` and no TIMEFORMAT).
    Iso,
    /// Seconds since 1970-01-01 UTC (`'epochsecs'`).
    EpochSecs,
    /// Milliseconds since 1970-01-01 UTC (`'epochmillisecs'`).
    EpochMillisecs,
}

/// Redshift COPY's optional parameters, as sluice applies them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOptions {
    pub format: Format,
    /// The field delimiter (delimited formats).
    pub delimiter: u8,
    pub gzip: bool,
    pub escape: bool,
    pub remove_quotes: bool,
    /// Fields equal to this string load as NULL (delimited formats; Redshift's default `\N`).
    pub null_as: String,
    pub ignore_header: u64,
    pub ignore_blank_lines: bool,
    pub fill_record: bool,
    pub empty_as_null: bool,
    pub blanks_as_null: bool,
    pub truncate_columns: bool,
    pub trim_blanks: bool,
    /// Replacement for invalid UTF-8 in delimited input; `None` makes it an error.
    pub accept_inv_chars: Option<char>,
    pub time_format: TimeFormat,
    /// Records that may fail to convert (and are skipped) before the object fails.
    pub max_errors: u64,
    pub explicit_ids: bool,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            format: Format::Text,
            delimiter: b'|',
            gzip: false,
            escape: false,
            remove_quotes: false,
            null_as: "\\N".to_string(),
            ignore_header: 0,
            ignore_blank_lines: false,
            fill_record: false,
            empty_as_null: false,
            blanks_as_null: false,
            truncate_columns: false,
            trim_blanks: false,
            accept_inv_chars: None,
            time_format: TimeFormat::Iso,
            max_errors: 0,
            explicit_ids: false,
        }
    }
}

/// Firehose's `CopyCommand`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyCommand {
    table: String,
    columns: Option<Vec<String>>,
    options: CopyOptions,
}

impl CopyCommand {
    /// Checks `DataTableName`, parses `DataTableColumns` (comma-separated; unquoted names are
    /// folded to lower case as PostgreSQL and Redshift fold identifiers, `"Quoted"` ones kept)
    /// and `CopyOptions`.
    pub fn new(
        data_table_name: &str,
        data_table_columns: Option<&str>,
        copy_options: Option<&str>,
    ) -> Result<CopyCommand, CopyCommandError> {
        let name_chars = data_table_name.chars().count();
        if name_chars == 0
            || name_chars > limits::TABLE_NAME_CHARS_MAX
            || data_table_name.trim().is_empty()
        {
            return Err(CopyCommandError::TableName {
                max: limits::TABLE_NAME_CHARS_MAX,
            });
        }
        let columns = match data_table_columns {
            Some(text) => {
                check_length("DataTableColumns", text)?;
                parse_columns(text)?
            }
            None => None,
        };
        let options = match copy_options {
            Some(text) => {
                check_length("CopyOptions", text)?;
                CopyOptions::parse(text)?
            }
            None => CopyOptions::default(),
        };
        Ok(CopyCommand {
            table: data_table_name.trim().to_string(),
            columns,
            options,
        })
    }

    /// `DataTableName` as given (PostgreSQL resolves it: `schema.table`, quoting, search_path).
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The column list, folded, or `None` for every column of the table.
    pub fn columns(&self) -> Option<&[String]> {
        self.columns.as_deref()
    }

    pub fn options(&self) -> &CopyOptions {
        &self.options
    }
}

fn check_length(member: &'static str, text: &str) -> Result<(), CopyCommandError> {
    if text.chars().count() > limits::COPY_STRING_CHARS_MAX {
        return Err(CopyCommandError::TooLong {
            member,
            max: limits::COPY_STRING_CHARS_MAX,
        });
    }
    Ok(())
}

fn columns_error(reason: impl Into<String>) -> CopyCommandError {
    CopyCommandError::Columns {
        reason: reason.into(),
    }
}

/// Parses `a, "B", c` into `["a", "B", "c"]`; blank means every column.
fn parse_columns(text: &str) -> Result<Option<Vec<String>>, CopyCommandError> {
    let mut text = text.trim();
    if let Some(inner) = text.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        text = inner.trim();
    }
    if text.is_empty() {
        return Ok(None);
    }
    let mut names: Vec<String> = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let name = if chars.next_if_eq(&'"').is_some() {
            let mut name = String::new();
            loop {
                match chars.next() {
                    Some('"') if chars.next_if_eq(&'"').is_some() => name.push('"'),
                    Some('"') => break,
                    Some(c) => name.push(c),
                    None => return Err(columns_error("a quoted column name is not closed")),
                }
            }
            if name.is_empty() {
                return Err(columns_error("a column name is empty"));
            }
            name
        } else {
            let mut name = String::new();
            while let Some(c) = chars.next_if(|c| *c != ',' && !c.is_whitespace()) {
                if !(c.is_alphanumeric() || c == '_' || c == '$') {
                    return Err(columns_error(format!(
                        "`{c}` cannot appear in an unquoted column name (quote the name)"
                    )));
                }
                name.push(c.to_ascii_lowercase());
            }
            if name.is_empty() {
                return Err(columns_error("a column name is empty"));
            }
            if name.starts_with(|c: char| c.is_ascii_digit() || c == '$') {
                return Err(columns_error(format!(
                    "`{name}` is not a column name (quote it)"
                )));
            }
            name
        };
        if names.contains(&name) {
            return Err(columns_error(format!("column `{name}` is listed twice")));
        }
        names.push(name);
        if names.len() > limits::COLUMNS_MAX {
            return Err(columns_error(format!(
                "more than {} columns",
                limits::COLUMNS_MAX
            )));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.next() {
            None => break,
            Some(',') => continue,
            Some(c) => {
                return Err(columns_error(format!(
                    "unexpected `{c}` after a column name"
                )))
            }
        }
    }
    Ok(Some(names))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A keyword or number, upper-cased.
    Word(String),
    /// A single-quoted string, `''` read as `'`.
    Str(String),
}

fn syntax(reason: impl Into<String>) -> CopyCommandError {
    CopyCommandError::Syntax {
        reason: reason.into(),
    }
}

fn unsupported(option: &str, hint: &str) -> CopyCommandError {
    CopyCommandError::Unsupported {
        option: option.to_string(),
        hint: hint.to_string(),
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, CopyCommandError> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() || c == ',' {
            // Redshift's grammar has no commas between options, but some write them.
            chars.next();
        } else if c == ';' {
            chars.next();
            if chars.any(|c| !c.is_whitespace() && c != ';') {
                return Err(syntax("text after `;`"));
            }
        } else if c == '\'' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    Some('\'') if chars.next_if_eq(&'\'').is_some() => s.push('\''),
                    Some('\'') => break,
                    Some(c) => s.push(c),
                    None => return Err(syntax("a quoted string is not closed")),
                }
            }
            tokens.push(Token::Str(s));
        } else if c.is_ascii_alphanumeric() || c == '_' {
            let mut w = String::new();
            while let Some(c) = chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_') {
                w.push(c.to_ascii_uppercase());
            }
            tokens.push(Token::Word(w));
        } else {
            return Err(syntax(format!("unexpected `{c}`")));
        }
    }
    Ok(tokens)
}

struct Tokens {
    tokens: std::vec::IntoIter<Token>,
    peeked: Option<Token>,
}

impl Tokens {
    fn next(&mut self) -> Option<Token> {
        self.peeked.take().or_else(|| self.tokens.next())
    }

    fn peek(&mut self) -> Option<&Token> {
        if self.peeked.is_none() {
            self.peeked = self.tokens.next();
        }
        self.peeked.as_ref()
    }

    /// Skips an optional `AS`.
    fn skip_as(&mut self) {
        if matches!(self.peek(), Some(Token::Word(w)) if w == "AS") {
            self.next();
        }
    }

    fn string(&mut self, option: &str) -> Result<String, CopyCommandError> {
        self.skip_as();
        match self.next() {
            Some(Token::Str(s)) => Ok(s),
            _ => Err(syntax(format!("{option} needs a quoted argument"))),
        }
    }

    fn optional_string(&mut self) -> Option<String> {
        self.skip_as();
        if matches!(self.peek(), Some(Token::Str(_))) {
            if let Some(Token::Str(s)) = self.next() {
                return Some(s);
            }
        }
        None
    }

    fn number(&mut self, option: &str) -> Result<u64, CopyCommandError> {
        self.skip_as();
        match self.next() {
            Some(Token::Word(w)) => w
                .parse::<u64>()
                .map_err(|_| syntax(format!("{option} needs a whole number, got `{w}`"))),
            Some(Token::Str(s)) => s
                .trim()
                .parse::<u64>()
                .map_err(|_| syntax(format!("{option} needs a whole number, got `{s}`"))),
            None => Err(syntax(format!("{option} needs a whole number"))),
        }
    }

    /// Skips one of the given words if it comes next.
    fn skip_word(&mut self, words: &[&str]) {
        if matches!(self.peek(), Some(Token::Word(w)) if words.contains(&w.as_str())) {
            self.next();
        }
    }
}

/// Reads Redshift's backslash forms in a delimiter or quote string: `\t`, `\n`, `\r`, `\\`,
/// `\'` and octal `\ddd`.
fn unescape(text: &str) -> Result<String, CopyCommandError> {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            None => out.push('\\'),
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(d @ '0'..='7') => {
                let mut value = d.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.next_if(|c| ('0'..='7').contains(c)) {
                        Some(d) => value = value * 8 + d.to_digit(8).unwrap_or(0),
                        None => return Err(syntax("an octal escape needs three digits (\\ddd)")),
                    }
                }
                match char::from_u32(value) {
                    Some(c) if c.is_ascii() => out.push(c),
                    _ => return Err(syntax("an octal escape must name an ASCII character")),
                }
            }
            Some(other) => out.push(other),
        }
    }
    Ok(out)
}

/// One ASCII character, not a line break, from a DELIMITER or QUOTE argument.
fn single_byte(option: &str, text: &str) -> Result<u8, CopyCommandError> {
    let text = unescape(text)?;
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii() && c != '\n' && c != '\r' && c != '\0' => Ok(c as u8),
        (Some(_), Some(_)) => Err(unsupported(
            &format!("{option} '{text}'"),
            " (a delimiter of more than one character)",
        )),
        _ => Err(syntax(format!(
            "{option} must be one ASCII character other than a line break"
        ))),
    }
}

const SOURCE_OPTIONS: &[&str] = &[
    "MANIFEST",
    "IAM_ROLE",
    "CREDENTIALS",
    "WITH",
    "ACCESS_KEY_ID",
    "SECRET_ACCESS_KEY",
    "SESSION_TOKEN",
    "ENCRYPTED",
    "MASTER_SYMMETRIC_KEY",
    "SSH",
    "READRATIO",
    "FROM",
];

impl CopyOptions {
    /// Parses `CopyOptions`.
    pub fn parse(text: &str) -> Result<CopyOptions, CopyCommandError> {
        let mut o = CopyOptions::default();
        let mut tokens = Tokens {
            tokens: tokenize(text)?.into_iter(),
            peeked: None,
        };
        let mut format: Option<(&'static str, Format)> = None;
        let mut delimiter: Option<u8> = None;
        let mut quote: Option<u8> = None;
        let mut null_as_given = false;
        let mut set_format = |name: &'static str, f: Format| -> Result<(), CopyCommandError> {
            if let Some((first, _)) = format {
                return Err(CopyCommandError::Conflict {
                    first: first.to_string(),
                    second: name.to_string(),
                });
            }
            format = Some((name, f));
            Ok(())
        };
        while let Some(token) = tokens.next() {
            let word = match token {
                Token::Word(w) => w,
                Token::Str(s) => return Err(syntax(format!("unexpected string '{s}'"))),
            };
            match word.as_str() {
                "FORMAT" => {
                    tokens.skip_as();
                    if !matches!(tokens.peek(), Some(Token::Word(_))) {
                        return Err(syntax("FORMAT needs a format (JSON, CSV)"));
                    }
                }
                "JSON" => {
                    let ignore_case = match tokens.optional_string() {
                        None => false,
                        Some(arg) => {
                            let normal = arg.split_whitespace().collect::<Vec<_>>().join(" ");
                            match normal.to_ascii_lowercase().as_str() {
                                "auto" => false,
                                "auto ignorecase" => true,
                                "noshred" | "shred" => {
                                    return Err(unsupported(
                                        &format!("JSON '{arg}'"),
                                        " (SUPER columns; use JSON 'auto' with json or jsonb \
                                         columns)",
                                    ))
                                }
                                _ => {
                                    return Err(unsupported(
                                        &format!("JSON '{arg}'"),
                                        " (JSONPaths files; use JSON 'auto' or \
                                         'auto ignorecase')",
                                    ))
                                }
                            }
                        }
                    };
                    set_format("JSON", Format::Json { ignore_case })?;
                }
                "CSV" => {
                    set_format("CSV", Format::Csv { quote: b'"' })?;
                    if matches!(tokens.peek(), Some(Token::Word(w)) if w == "QUOTE") {
                        tokens.next();
                        quote = Some(single_byte("QUOTE", &tokens.string("QUOTE")?)?);
                    }
                }
                "QUOTE" => quote = Some(single_byte("QUOTE", &tokens.string("QUOTE")?)?),
                "DELIMITER" => {
                    delimiter = Some(single_byte("DELIMITER", &tokens.string("DELIMITER")?)?)
                }
                "GZIP" => o.gzip = true,
                "BZIP2" | "LZOP" | "ZSTD" => {
                    return Err(unsupported(
                        &word,
                        " (GZIP is; the staged objects' CompressionFormat must match)",
                    ))
                }
                "FIXEDWIDTH" | "AVRO" | "PARQUET" | "ORC" | "SHAPEFILE" | "JSONPATHS" => {
                    return Err(unsupported(
                        &word,
                        " (use JSON 'auto', CSV or delimited text)",
                    ))
                }
                "TIMEFORMAT" => {
                    let arg = tokens.string("TIMEFORMAT")?;
                    o.time_format = match arg.trim().to_ascii_lowercase().as_str() {
                        "auto" | "yyyy-mm-dd hh:mi:ss" | "yyyy-mm-ddthh:mi:ss" => TimeFormat::Iso,
                        "epochsecs" => TimeFormat::EpochSecs,
                        "epochmillisecs" => TimeFormat::EpochMillisecs,
                        _ => {
                            return Err(unsupported(
                                &format!("TIMEFORMAT '{arg}'"),
                                " (use 'auto', 'epochsecs', 'epochmillisecs' or \
                                 'YYYY-MM-DD HH:MI:SS')",
                            ))
                        }
                    };
                }
                "DATEFORMAT" => {
                    let arg = tokens.string("DATEFORMAT")?;
                    match arg.trim().to_ascii_lowercase().as_str() {
                        "auto" | "yyyy-mm-dd" => {}
                        _ => {
                            return Err(unsupported(
                                &format!("DATEFORMAT '{arg}'"),
                                " (use 'auto' or 'YYYY-MM-DD')",
                            ))
                        }
                    }
                }
                "IGNOREHEADER" => {
                    let n = tokens.number("IGNOREHEADER")?;
                    if n > limits::IGNORE_HEADER_LINES_MAX {
                        return Err(syntax(format!(
                            "IGNOREHEADER must be at most {}",
                            limits::IGNORE_HEADER_LINES_MAX
                        )));
                    }
                    o.ignore_header = n;
                }
                "NULL" => {
                    o.null_as = tokens.string("NULL AS")?;
                    null_as_given = true;
                }
                "EMPTYASNULL" => o.empty_as_null = true,
                "BLANKSASNULL" => o.blanks_as_null = true,
                "TRUNCATECOLUMNS" => o.truncate_columns = true,
                "TRIMBLANKS" => o.trim_blanks = true,
                "ESCAPE" => o.escape = true,
                "REMOVEQUOTES" => o.remove_quotes = true,
                "FILLRECORD" => o.fill_record = true,
                "EXPLICIT_IDS" => o.explicit_ids = true,
                "IGNOREBLANKLINES" => o.ignore_blank_lines = true,
                "ROUNDEC" | "ACCEPTANYDATE" => {}
                "ACCEPTINVCHARS" => {
                    o.accept_inv_chars = Some(match tokens.optional_string() {
                        None => '?',
                        Some(s) => {
                            let mut chars = s.chars();
                            match (chars.next(), chars.next()) {
                                (Some(c), None) if c.is_ascii() && c != '\0' => c,
                                _ => {
                                    return Err(syntax("ACCEPTINVCHARS takes one ASCII character"))
                                }
                            }
                        }
                    })
                }
                "MAXERROR" => {
                    // Redshift uses its limit when a larger value is given.
                    o.max_errors = tokens.number("MAXERROR")?.min(limits::MAX_ERRORS_MAX);
                }
                "COMPUPDATE" => tokens.skip_word(&["ON", "OFF", "TRUE", "FALSE", "PRESET"]),
                "STATUPDATE" => tokens.skip_word(&["ON", "OFF", "TRUE", "FALSE"]),
                "COMPROWS" => {
                    tokens.number("COMPROWS")?;
                }
                "REGION" => {
                    tokens.string("REGION")?;
                }
                "NOLOAD" => return Err(unsupported("NOLOAD", "")),
                w if SOURCE_OPTIONS.contains(&w) => {
                    return Err(unsupported(
                        w,
                        " in CopyOptions (Firehose supplies the source and its credentials)",
                    ))
                }
                w => return Err(syntax(format!("unknown option `{w}`"))),
            }
        }
        o.format = match format {
            Some((_, Format::Csv { .. })) => Format::Csv {
                quote: quote.unwrap_or(b'"'),
            },
            Some((_, f)) => f,
            None => Format::Text,
        };
        if quote.is_some() && !matches!(o.format, Format::Csv { .. }) {
            return Err(syntax("QUOTE can only be used with CSV"));
        }
        match o.format {
            Format::Json { .. } => {
                let json_conflicts = [
                    ("DELIMITER", delimiter.is_some()),
                    ("ESCAPE", o.escape),
                    ("FILLRECORD", o.fill_record),
                    ("IGNOREBLANKLINES", o.ignore_blank_lines),
                    ("NULL AS", null_as_given),
                    ("REMOVEQUOTES", o.remove_quotes),
                    ("IGNOREHEADER", o.ignore_header > 0),
                    ("ACCEPTINVCHARS", o.accept_inv_chars.is_some()),
                ];
                if let Some((name, _)) = json_conflicts.iter().find(|(_, set)| *set) {
                    return Err(CopyCommandError::Conflict {
                        first: "JSON".to_string(),
                        second: name.to_string(),
                    });
                }
            }
            Format::Csv { quote } => {
                for (name, set) in [("ESCAPE", o.escape), ("REMOVEQUOTES", o.remove_quotes)] {
                    if set {
                        return Err(CopyCommandError::Conflict {
                            first: "CSV".to_string(),
                            second: name.to_string(),
                        });
                    }
                }
                o.delimiter = delimiter.unwrap_or(b',');
                if o.delimiter == quote {
                    return Err(CopyCommandError::Conflict {
                        first: "DELIMITER".to_string(),
                        second: "a QUOTE of the same character".to_string(),
                    });
                }
            }
            Format::Text => {
                o.delimiter = delimiter.unwrap_or(b'|');
                if o.escape && o.delimiter == b'\\' {
                    return Err(CopyCommandError::Conflict {
                        first: "ESCAPE".to_string(),
                        second: "DELIMITER '\\\\'".to_string(),
                    });
                }
            }
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> CopyOptions {
        CopyOptions::parse(text).unwrap()
    }

    #[test]
    fn json_forms() {
        for text in [
            "json 'auto'",
            "JSON 'auto'",
            "FORMAT AS JSON 'auto'",
            "format json 'auto';",
            "JSON AS 'auto'",
            "json",
        ] {
            assert_eq!(
                parse(text).format,
                Format::Json { ignore_case: false },
                "{text}"
            );
        }
        assert_eq!(
            parse("json 'auto ignorecase'").format,
            Format::Json { ignore_case: true }
        );
        assert_eq!(
            parse("FORMAT AS JSON 'AUTO  IGNORECASE' gzip").format,
            Format::Json { ignore_case: true }
        );
        assert!(parse("json 'auto' gzip").gzip);
    }

    #[test]
    fn delimited_forms() {
        let o = parse("csv");
        assert_eq!(o.format, Format::Csv { quote: b'"' });
        assert_eq!(o.delimiter, b',');
        let o = parse("CSV QUOTE AS '''' DELIMITER ';' IGNOREHEADER 1");
        assert_eq!(o.format, Format::Csv { quote: b'\'' });
        assert_eq!(o.delimiter, b';');
        assert_eq!(o.ignore_header, 1);
        let o = parse("");
        assert_eq!(o.format, Format::Text);
        assert_eq!(o.delimiter, b'|');
        assert_eq!(parse("delimiter '\\t'").delimiter, b'\t');
        assert_eq!(parse("delimiter '\\011'").delimiter, b'\t');
        assert_eq!(parse("delimiter as ','").delimiter, b',');
        let o = parse("delimiter '|' escape removequotes null as 'NULL' fillrecord");
        assert!(o.escape && o.remove_quotes && o.fill_record);
        assert_eq!(o.null_as, "NULL");
    }

    #[test]
    fn value_options() {
        let o = parse(
            "json 'auto' timeformat 'epochmillisecs' dateformat 'auto' emptyasnull \
             blanksasnull truncatecolumns trimblanks maxerror 5 compupdate off statupdate on \
             roundec acceptanydate region 'us-east-1' explicit_ids",
        );
        assert_eq!(o.time_format, TimeFormat::EpochMillisecs);
        assert!(o.empty_as_null && o.blanks_as_null && o.truncate_columns && o.trim_blanks);
        assert_eq!(o.max_errors, 5);
        assert!(o.explicit_ids);
        assert_eq!(parse("timeformat 'auto'").time_format, TimeFormat::Iso);
        assert_eq!(
            parse("timeformat 'YYYY-MM-DD HH:MI:SS'").time_format,
            TimeFormat::Iso
        );
        assert_eq!(
            parse("timeformat 'epochsecs'").time_format,
            TimeFormat::EpochSecs
        );
        assert_eq!(parse("acceptinvchars").accept_inv_chars, Some('?'));
        assert_eq!(parse("acceptinvchars as '^'").accept_inv_chars, Some('^'));
    }

    #[test]
    fn maxerror_is_capped_at_redshifts_limit() {
        let max = limits::MAX_ERRORS_MAX;
        assert_eq!(parse(&format!("maxerror {max}")).max_errors, max);
        assert_eq!(parse(&format!("maxerror {}", max + 1)).max_errors, max);
    }

    #[test]
    fn ignoreheader_at_the_limit() {
        let max = limits::IGNORE_HEADER_LINES_MAX;
        assert_eq!(parse(&format!("csv ignoreheader {max}")).ignore_header, max);
        assert!(CopyOptions::parse(&format!("csv ignoreheader {}", max + 1)).is_err());
    }

    #[test]
    fn refusals_name_the_option() {
        let cases = [
            ("json 's3://bucket/paths.json'", "JSONPaths"),
            ("lzop", "LZOP"),
            ("fixedwidth 'a:1'", "FIXEDWIDTH"),
            ("avro 'auto'", "AVRO"),
            ("manifest", "MANIFEST"),
            ("iam_role 'arn:aws:iam::1:role/r'", "IAM_ROLE"),
            ("timeformat 'MM/DD/YYYY'", "TIMEFORMAT"),
            ("delimiter '|~|'", "more than one character"),
            ("json 'auto' csv", "cannot be used with"),
            ("csv escape", "cannot be used with"),
            ("json 'auto' delimiter ','", "cannot be used with"),
            ("frobnicate", "unknown option `FROBNICATE`"),
            ("delimiter", "needs a quoted argument"),
            ("quote '\"'", "QUOTE can only be used with CSV"),
            ("json 'auto'; gzip", "after `;`"),
            ("delimiter 'abc", "not closed"),
        ];
        for (text, needle) in cases {
            let err = CopyOptions::parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn columns() {
        let c = CopyCommand::new("t", Some("a, B ,\"Mixed\"\"Case\", d_1"), None).unwrap();
        assert_eq!(
            c.columns().unwrap(),
            ["a", "b", "Mixed\"Case", "d_1"].map(String::from)
        );
        assert_eq!(
            CopyCommand::new("t", Some("  "), None).unwrap().columns(),
            None
        );
        assert_eq!(
            CopyCommand::new("t", Some("(x,y)"), None)
                .unwrap()
                .columns()
                .unwrap(),
            ["x", "y"].map(String::from)
        );
        for bad in ["a,,b", "a,A", "a b", "\"open", "a-b", "1a"] {
            assert!(CopyCommand::new("t", Some(bad), None).is_err(), "{bad}");
        }
    }

    #[test]
    fn member_lengths_at_the_limit() {
        let max = limits::TABLE_NAME_CHARS_MAX;
        assert!(CopyCommand::new(&"t".repeat(max), None, None).is_ok());
        assert!(CopyCommand::new(&"t".repeat(max + 1), None, None).is_err());
        assert!(CopyCommand::new("", None, None).is_err());
        let max = limits::COPY_STRING_CHARS_MAX;
        let at = format!("json 'auto'{}", " ".repeat(max - 11));
        assert!(CopyCommand::new("t", None, Some(&at)).is_ok());
        let past = format!("{at} ");
        assert!(matches!(
            CopyCommand::new("t", None, Some(&past)),
            Err(CopyCommandError::TooLong { .. })
        ));
    }
}
