//! The converter's fast lane in native code: `streaming/conversion/native_path.py` builds a `Kernel` at start from the
//! rules declaration and the registered schema, and the router calls its `convert_batch` once per batch.
//!
//! Contract: for each message the kernel either writes the record itself or hands the message to
//! `fallback` (the pure engine's lane, then the reference). It writes a record only for the plainest
//! message - ASCII JSON, one object, only the declared input keys, each at most once, strings without
//! escapes, an event time a plain integer or a string of digits - and only when every check of the pure fast
//! lane (`streaming/conversion/rules/codegen.py`) passes; then its bytes are the pure lane's. Whatever it is unsure of,
//! it declines: a decline can cost time, never a difference.
//!
//! An interpreter of the declaration: each input is checked by its rule kind (`Rule`, the closed vocabulary
//! of `streaming/conversion/rules/kinds.py`), each field of the schema takes one part of one input or a fact of
//! processing (`Source`) and is written by its Avro type (`Kind`). Field and key names come from Python.

mod insights;

use std::borrow::Cow;
use std::collections::HashMap;

use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple, PyType};

/// The most inputs a declaration may have for the kernel (the event is parsed into a fixed array).
const MAX_INPUTS: usize = 16;

/// The rule kinds, as `streaming/conversion/rules/kinds.py` names them.
#[derive(Clone, Copy, PartialEq)]
enum Rule {
    Uuid,
    Platform,
    Code,
    Ip,
    Semver,
    EventTime,
    Text,
}

fn rule_named(name: &str) -> PyResult<Rule> {
    Ok(match name {
        "uuid" => Rule::Uuid,
        "platform" => Rule::Platform,
        "code" => Rule::Code,
        "ip_address" => Rule::Ip,
        "semver" => Rule::Semver,
        "epoch_time" => Rule::EventTime,
        "text" => Rule::Text,
        _ => {
            return Err(PyValueError::new_err(format!(
                "rule kind {name:?} is not implemented natively"
            )))
        }
    })
}

/// One input of the declaration: its key in the event, its rule and the rule's tables.
struct Input {
    key: String,
    rule: Rule,
    required: bool,
    /// platform: the value of an absent input.
    default: Option<Py<PyString>>,
    /// platform, semver: the reference's memo table, read only.
    memo: Option<Py<PyDict>>,
    /// code: the codes, each as the Python string the lane hands on.
    codes: HashMap<String, Py<PyString>>,
}

/// Which part of an input's checked value a field takes.
#[derive(Clone, Copy)]
enum Part {
    Value,
    IpVersion,
    IpClass,
    Major,
    Minor,
    Patch,
}

/// Where a schema field's value comes from: a part of an input, or a fact of processing.
#[derive(Clone, Copy)]
enum Source {
    Input(usize, Part),
    ProcessedAt,
    Topic,
    Partition,
    Offset,
}

/// How a schema field is written (Avro binary encoding).
enum Base {
    String,
    Int,
    Long,
    /// An enum: the index of each symbol.
    Enum(HashMap<String, i64>),
}

struct Field {
    source: Source,
    base: Base,
    /// A union with null: the branch index of null (0 or 1).
    null_index: Option<u8>,
}

/// A JSON value as the kernel accepts it: a string without escapes, a non-negative integer, or null.
#[derive(Clone, Copy)]
enum Json<'a> {
    Absent,
    Text(&'a str),
    Integer(i128),
}

/// An input's value once checked.
enum Checked<'a, 'py> {
    Null,
    Text(&'a str),
    /// A value the lane hands on as this very Python string (a platform from the memo table, a code).
    Shared(Bound<'py, PyString>),
    Ip(Cow<'a, str>, i64, Cow<'a, str>),
    Version(&'a str, i64, i64, i64),
    Millis(i64),
}

/// A value of the processed record, before it is written.
enum Value<'v> {
    Null,
    Text(&'v str),
    Number(i64),
}

fn skip_space(data: &[u8], mut at: usize) -> usize {
    while at < data.len() && matches!(data[at], b' ' | b'\t' | b'\r' | b'\n') {
        at += 1;
    }
    at
}

/// The string starting at `data[at] == '"'` and the index after it; None for an escape or control byte.
fn string_at(data: &[u8], at: usize) -> Option<(&str, usize)> {
    if data.get(at) != Some(&b'"') {
        return None;
    }
    let start = at + 1;
    let mut end = start;
    loop {
        match *data.get(end)? {
            b'"' => break,
            b'\\' => return None,
            byte if byte < 0x20 => return None,
            _ => end += 1,
        }
    }
    // ASCII was checked for the whole message, so this cannot fail.
    Some((std::str::from_utf8(&data[start..end]).ok()?, end + 1))
}

/// A value: (Some(json), next) for a string or an integer, (None, next) for null; None to decline.
fn value_at(data: &[u8], at: usize) -> Option<(Json<'_>, usize)> {
    match *data.get(at)? {
        b'"' => string_at(data, at).map(|(text, next)| (Json::Text(text), next)),
        b'n' if data[at..].starts_with(b"null") => Some((Json::Absent, at + 4)),
        b'0'..=b'9' => {
            let digits = data[at..]
                .iter()
                .take_while(|byte| byte.is_ascii_digit())
                .count();
            let next = at + digits;
            let leading_zero = digits > 1 && data[at] == b'0';
            let fraction = matches!(data.get(next), Some(b'.' | b'e' | b'E'));
            if leading_zero || fraction || digits > 18 {
                return None;
            }
            let number = std::str::from_utf8(&data[at..next]).ok()?.parse().ok()?;
            Some((Json::Integer(number), next))
        }
        _ => None,
    }
}

/// Fill `values` (one per input, in order) if `data` is one plain JSON object of the declared keys, each
/// at most once; else None. `order[n]` is the input the n-th key of the previous event was: a producer
/// writes its keys in one order, so each key is found at the first comparison (else by a scan).
fn parse_event<'a>(
    data: &'a [u8],
    inputs: &[Input],
    values: &mut [Json<'a>],
    order: &mut [usize; MAX_INPUTS],
) -> Option<()> {
    let mut seen: u16 = 0;
    let mut position = 0;
    let mut at = skip_space(data, 0);
    if data.get(at) != Some(&b'{') {
        return None;
    }
    at = skip_space(data, at + 1);
    if data.get(at) == Some(&b'}') {
        at += 1;
    } else {
        loop {
            let (key, next) = string_at(data, at)?;
            at = skip_space(data, next);
            if data.get(at) != Some(&b':') {
                return None;
            }
            let (value, next) = value_at(data, skip_space(data, at + 1))?;
            let guess = *order.get(position)?; // more keys than inputs: the pure path decides
            let slot = if inputs.get(guess).is_some_and(|input| input.key == key) {
                guess
            } else {
                // An unknown key: the pure path decides.
                let found = inputs.iter().position(|input| input.key == key)?;
                order[position] = found;
                found
            };
            position += 1;
            if seen & (1 << slot) != 0 {
                return None; // a repeated key: the pure path decides
            }
            seen |= 1 << slot;
            values[slot] = value;
            at = skip_space(data, next);
            match data.get(at) {
                Some(b',') => at = skip_space(data, at + 1),
                Some(b'}') => {
                    at += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (skip_space(data, at) == data.len()).then_some(())
}

/// A lower-case UUID in 8-4-4-4-12 hexadecimal text form.
fn is_lower_uuid(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, &b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

/// The four octets of a dotted quad exactly as glibc's `inet_pton(AF_INET)` takes it; None otherwise.
fn dotted_quad(text: &str) -> Option<[u8; 4]> {
    let mut octets = [0u8; 4];
    let mut parts = text.split('.');
    for octet in octets.iter_mut() {
        let part = parts.next()?.as_bytes();
        let plain = !part.is_empty() && part.len() <= 3 && part.iter().all(u8::is_ascii_digit);
        if !plain || (part.len() > 1 && part[0] == b'0') {
            return None;
        }
        *octet = std::str::from_utf8(part)
            .ok()?
            .parse::<u16>()
            .ok()?
            .try_into()
            .ok()?;
    }
    parts.next().is_none().then_some(octets)
}

fn write_varint(out: &mut Vec<u8>, mut n: u64) {
    while n > 0x7F {
        out.push((n as u8 & 0x7F) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn write_long(out: &mut Vec<u8>, n: i64) {
    write_varint(out, ((n << 1) ^ (n >> 63)) as u64);
}

fn write_string(out: &mut Vec<u8>, text: &str) {
    write_long(out, text.len() as i64);
    out.extend_from_slice(text.as_bytes());
}

/// The configuration of the fast lane; built once at start by `streaming/conversion/native_path.py`.
#[pyclass(frozen, module = "kdp_native")]
struct Kernel {
    inputs: Vec<Input>,
    layout: Vec<Field>,
    /// The fields written as the record's key and counted by the tallies (device types, locales).
    key: usize,
    tallies: (usize, usize),
    prefix: Vec<u8>,
    max_message_bytes: usize,
    min_event_time_ms: i64,
    max_future_ms: i64,
    v4_by_first_octet: Vec<Option<String>>,
    classify_ipv4: Py<PyAny>,
    classify: Py<PyAny>,
    fallback: Py<PyAny>,
    converted: Py<PyType>,
}

type InputSpec<'py> = (
    String,
    String,
    bool,
    Option<Bound<'py, PyString>>,
    Option<Bound<'py, PyDict>>,
    Vec<Bound<'py, PyString>>,
);

#[pymethods]
impl Kernel {
    /// `inputs`: (key, rule kind, required, default, memo table, codes) per input in order.
    /// `layout`: (input index or -1, part, kind, symbols) per schema field in order: part is "value",
    /// "version", "class", "major", "minor", "patch", or with index -1 "processing_time", "topic", "partition",
    /// "offset"; kind "string", "int", "long" or "enum" (symbols: the enum's; else empty), with a prefix
    /// "null|" or a suffix "|null" for a union with null. `key`, `tallies`: field indexes.
    #[new]
    #[allow(clippy::too_many_arguments)]
    fn new(
        inputs: Vec<InputSpec<'_>>,
        layout: Vec<(i64, String, String, Vec<String>)>,
        key: usize,
        tallies: (usize, usize),
        prefix: Vec<u8>,
        max_message_bytes: usize,
        min_event_time_ms: i64,
        max_future_ms: i64,
        v4_by_first_octet: Vec<Option<String>>,
        classify_ipv4: Bound<'_, PyAny>,
        classify: Bound<'_, PyAny>,
        fallback: Bound<'_, PyAny>,
        converted: Bound<'_, PyType>,
    ) -> PyResult<Self> {
        if inputs.len() > MAX_INPUTS {
            return Err(PyValueError::new_err(format!(
                "at most {MAX_INPUTS} inputs"
            )));
        }
        let mut checked_inputs = Vec::new();
        for (input_key, rule, required, default, memo, codes) in inputs {
            let rule = rule_named(&rule)?;
            let needs_memo = matches!(rule, Rule::Platform | Rule::Semver);
            if needs_memo != memo.is_some() || (rule == Rule::Platform) != default.is_some() {
                return Err(PyValueError::new_err(format!(
                    "input {input_key:?}: tables do not fit its rule"
                )));
            }
            let codes = codes
                .into_iter()
                .map(|c| Ok((c.to_str()?.to_owned(), c.unbind())))
                .collect::<PyResult<_>>()?;
            checked_inputs.push(Input {
                key: input_key,
                rule,
                required,
                default: default.map(Bound::unbind),
                memo: memo.map(Bound::unbind),
                codes,
            });
        }
        let mut fields = Vec::new();
        for (index, part, kind, symbols) in layout {
            let source = match (usize::try_from(index).ok(), part.as_str()) {
                (Some(i), part) if i < checked_inputs.len() => {
                    let rule = checked_inputs[i].rule;
                    Source::Input(
                        i,
                        match (rule, part) {
                            (_, "value") => Part::Value,
                            (Rule::Ip, "version") => Part::IpVersion,
                            (Rule::Ip, "class") => Part::IpClass,
                            (Rule::Semver, "major") => Part::Major,
                            (Rule::Semver, "minor") => Part::Minor,
                            (Rule::Semver, "patch") => Part::Patch,
                            _ => {
                                return Err(PyValueError::new_err(format!(
                                    "part {part:?} is not implemented"
                                )))
                            }
                        },
                    )
                }
                (None, "processing_time") => Source::ProcessedAt,
                (None, "topic") => Source::Topic,
                (None, "partition") => Source::Partition,
                (None, "offset") => Source::Offset,
                _ => {
                    return Err(PyValueError::new_err(format!(
                        "source {index}/{part:?} is not implemented"
                    )))
                }
            };
            let (base_name, null_index) = if let Some(base) = kind.strip_prefix("null|") {
                (base, Some(0))
            } else if let Some(base) = kind.strip_suffix("|null") {
                (base, Some(1))
            } else {
                (kind.as_str(), None)
            };
            let base = match base_name {
                "string" => Base::String,
                "int" => Base::Int,
                "long" => Base::Long,
                "enum" => Base::Enum(symbols.into_iter().zip(0..).collect()),
                _ => {
                    return Err(PyValueError::new_err(format!(
                        "kind {kind:?} is not supported"
                    )))
                }
            };
            fields.push(Field {
                source,
                base,
                null_index,
            });
        }
        if key >= fields.len() || tallies.0 >= fields.len() || tallies.1 >= fields.len() {
            return Err(PyValueError::new_err(
                "key and tallies must be field indexes",
            ));
        }
        if v4_by_first_octet.len() != 256 {
            return Err(PyValueError::new_err(
                "v4_by_first_octet must have 256 entries",
            ));
        }
        Ok(Kernel {
            inputs: checked_inputs,
            layout: fields,
            key,
            tallies,
            prefix,
            max_message_bytes,
            min_event_time_ms,
            max_future_ms,
            v4_by_first_octet,
            classify_ipv4: classify_ipv4.unbind(),
            classify: classify.unbind(),
            fallback: fallback.unbind(),
            converted: converted.unbind(),
        })
    }

    /// The fields of `ConvertedBatch` for `messages` (the contract of `streaming.conversion.convert.ConvertBatch`),
    /// its lanes left to Python.
    fn convert_batch<'py>(
        &self,
        py: Python<'py>,
        messages: &Bound<'py, PyAny>,
        now_ms: i64,
        oldest_ms: i64,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let (values, keys) = (PyList::empty(py), PyList::empty(py));
        let (device_types, locales) = (PyList::empty(py), PyList::empty(py));
        let (rejected, run_starts, run_ends) =
            (PyList::empty(py), PyList::empty(py), PyList::empty(py));
        let mut bytes_in: i64 = 0;
        // The current run's topic and partition: as Python objects (compared as the pure lane compares
        // them, `!=`) and, when they are a str and an int, as Rust values (compared without Python).
        let (mut run_topic, mut run_partition) =
            (py.None().into_bound(py), py.None().into_bound(py));
        let mut run: Option<(String, i64)> = None;
        let mut previous: Option<Bound<'py, PyAny>> = None;
        let mut body = Vec::with_capacity(256);
        let mut order = [0usize; MAX_INPUTS];
        for message in messages.try_iter()? {
            let message = message?;
            let value = message.call_method0(intern!(py, "value"))?;
            let topic_object = message.call_method0(intern!(py, "topic"))?;
            let partition_object = message.call_method0(intern!(py, "partition"))?;
            let offset_object = message.call_method0(intern!(py, "offset"))?;
            // A message without a str topic and int partition and offset (never from Kafka) is the pure
            // path's to judge.
            let topic = topic_object
                .cast::<PyString>()
                .ok()
                .map(|t| t.to_str())
                .transpose()?;
            let partition = partition_object.extract::<i64>().ok();
            let offset = offset_object.extract::<i64>().ok();
            let same_run = match (&run, topic, partition) {
                (Some((run_t, run_p)), Some(t), Some(p)) => run_t == t && *run_p == p,
                _ => !(partition_object.ne(&run_partition)? || topic_object.ne(&run_topic)?),
            };
            if !same_run {
                if let Some(previous) = previous.take() {
                    run_ends.append(previous)?;
                }
                run_starts.append(&message)?;
                run = topic.zip(partition).map(|(t, p)| (t.to_owned(), p));
                (run_topic, run_partition) = (topic_object.clone(), partition_object.clone());
            }
            if !value.is_none() {
                bytes_in += value.len()? as i64;
            }
            let written = match (value.cast::<PyBytes>(), topic, partition, offset) {
                (Ok(bytes), Some(topic), Some(partition), Some(offset)) => self.usual(
                    py,
                    bytes.as_bytes(),
                    (topic, partition, offset),
                    now_ms,
                    oldest_ms,
                    &mut body,
                    &mut order,
                    (&keys, &device_types, &locales),
                )?,
                _ => false,
            };
            if written {
                values.append(PyBytes::new(py, &body))?;
            } else {
                let args = (
                    &value,
                    &topic_object,
                    &partition_object,
                    &offset_object,
                    now_ms,
                    oldest_ms,
                );
                let result = self.fallback.bind(py).call1(args)?;
                if result.get_type().is(self.converted.bind(py)) {
                    let converted = result.cast::<PyTuple>()?;
                    values.append(converted.get_item(0)?)?;
                    keys.append(converted.get_item(1)?)?;
                    device_types.append(converted.get_item(2)?)?;
                    locales.append(converted.get_item(3)?)?;
                } else {
                    rejected.append((&message, result))?;
                }
            }
            previous = Some(message);
        }
        if let Some(previous) = previous {
            run_ends.append(previous)?;
        }
        let columns: [Bound<'py, PyAny>; 8] = [
            values.into_any(),
            keys.into_any(),
            device_types.into_any(),
            locales.into_any(),
            rejected.into_any(),
            run_starts.into_any(),
            run_ends.into_any(),
            bytes_in.into_pyobject(py)?.into_any(),
        ];
        PyTuple::new(py, columns)
    }
}

impl Kernel {
    /// Check input `input` of value `json` as the pure lane does: its checked value, or None to decline.
    fn check<'a, 'py>(
        &'a self,
        py: Python<'py>,
        input: &Input,
        json: Json<'a>,
        now_ms: i64,
        oldest_ms: i64,
    ) -> PyResult<Option<Checked<'a, 'py>>> {
        let text = match json {
            Json::Absent => {
                if input.required {
                    return Ok(None);
                }
                return Ok(Some(match &input.default {
                    Some(default) => Checked::Shared(default.bind(py).clone()),
                    None => Checked::Null,
                }));
            }
            Json::Integer(number) if input.rule == Rule::EventTime => {
                return Ok(self.event_time(number, now_ms, oldest_ms))
            }
            Json::Integer(_) => return Ok(None), // a wrong type: the reference decides
            Json::Text(text) => text,
        };
        Ok(match input.rule {
            Rule::Uuid => is_lower_uuid(text).then_some(Checked::Text(text)),
            Rule::Text => Some(Checked::Text(text)),
            Rule::Code => input
                .codes
                .get(text)
                .map(|code| Checked::Shared(code.bind(py).clone())),
            Rule::Platform => match input
                .memo
                .as_ref()
                .map(|memo| memo.bind(py).get_item(text))
                .transpose()?
                .flatten()
            {
                Some(found) => match found.cast_into::<PyString>() {
                    Ok(found) if !found.to_str()?.is_empty() => Some(Checked::Shared(found)),
                    _ => None,
                },
                None => None,
            },
            Rule::Semver => match input
                .memo
                .as_ref()
                .map(|memo| memo.bind(py).get_item(text))
                .transpose()?
                .flatten()
            {
                Some(found) if !found.is_none() => match found.extract::<(i64, i64, i64)>() {
                    Ok((major, minor, patch)) => Some(Checked::Version(text, major, minor, patch)),
                    Err(_) => None,
                },
                _ => None,
            },
            Rule::EventTime => {
                // `str.isdigit()` on ASCII, at most 19 of them, as the pure lane takes them
                if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
                    return Ok(None);
                }
                match text.parse::<i128>() {
                    Ok(number) => self.event_time(number, now_ms, oldest_ms),
                    Err(_) => None,
                }
            }
            Rule::Ip => self.ip(py, text),
        })
    }

    /// The event time as the pure lane takes it: epoch seconds, else milliseconds, inside the window.
    fn event_time<'a, 'py>(
        &self,
        timestamp: i128,
        now_ms: i64,
        oldest_ms: i64,
    ) -> Option<Checked<'a, 'py>> {
        let (minimum, latest) = (
            self.min_event_time_ms as i128,
            now_ms as i128 + self.max_future_ms as i128,
        );
        let mut event_time = timestamp * 1000;
        if !(minimum <= event_time && event_time <= latest) {
            event_time = timestamp;
        }
        (minimum <= event_time && event_time <= latest && event_time >= oldest_ms as i128)
            .then_some(Checked::Millis(event_time as i64))
    }

    /// The address: IPv6 through the same `classify` as the pure lane; IPv4 by the first-octet table.
    fn ip<'a, 'py>(&'a self, py: Python<'py>, text: &'a str) -> Option<Checked<'a, 'py>> {
        if text.contains(':') {
            let classified = self.classify.bind(py).call1((text,)).ok()?;
            let (canonical, version, class) = classified.extract::<(String, i64, String)>().ok()?;
            return Some(Checked::Ip(
                Cow::Owned(canonical),
                version,
                Cow::Owned(class),
            ));
        }
        let octets = dotted_quad(text)?;
        let class = match &self.v4_by_first_octet[octets[0] as usize] {
            Some(class) if !class.is_empty() => Cow::Borrowed(class.as_str()),
            _ => match self
                .classify_ipv4
                .bind(py)
                .call1((PyBytes::new(py, &octets),))
                .ok()?
                .extract::<String>()
            {
                Ok(class) if !class.is_empty() => Cow::Owned(class),
                _ => return None,
            },
        };
        Some(Checked::Ip(Cow::Borrowed(text), 4, class))
    }

    /// Write the usual message `data`'s record into `body`, its key and tallied values onto their columns;
    /// false to hand the message to the pure path (an exception from a Python helper it calls, too: the pure
    /// lane would hand such a message to the reference).
    #[allow(clippy::too_many_arguments)]
    fn usual<'a, 'py>(
        &'a self,
        py: Python<'py>,
        data: &'a [u8],
        (topic, partition, offset): (&str, i64, i64),
        now_ms: i64,
        oldest_ms: i64,
        body: &mut Vec<u8>,
        order: &mut [usize; MAX_INPUTS],
        (keys, device_types, locales): (
            &Bound<'py, PyList>,
            &Bound<'py, PyList>,
            &Bound<'py, PyList>,
        ),
    ) -> PyResult<bool> {
        if data.len() > self.max_message_bytes || !data.is_ascii() {
            return Ok(false);
        }
        let mut json = [Json::Absent; MAX_INPUTS];
        if parse_event(data, &self.inputs, &mut json, order).is_none() {
            return Ok(false);
        }
        let mut checked: [Checked<'a, 'py>; MAX_INPUTS] = std::array::from_fn(|_| Checked::Null);
        for ((input, value), slot) in self.inputs.iter().zip(json).zip(checked.iter_mut()) {
            match self.check(py, input, value, now_ms, oldest_ms)? {
                Some(value) => *slot = value,
                None => return Ok(false),
            }
        }
        body.clear();
        body.extend_from_slice(&self.prefix);
        for field in &self.layout {
            let value = match field.source {
                Source::Input(index, part) => match (&checked[index], part) {
                    (Checked::Null, _) => Value::Null,
                    (Checked::Text(text), Part::Value) => Value::Text(text),
                    (Checked::Shared(text), Part::Value) => Value::Text(text.to_str()?),
                    (Checked::Ip(canonical, _, _), Part::Value) => Value::Text(canonical),
                    (Checked::Ip(_, version, _), Part::IpVersion) => Value::Number(*version),
                    (Checked::Ip(_, _, class), Part::IpClass) => Value::Text(class),
                    (Checked::Version(text, ..), Part::Value) => Value::Text(text),
                    (Checked::Version(_, major, _, _), Part::Major) => Value::Number(*major),
                    (Checked::Version(_, _, minor, _), Part::Minor) => Value::Number(*minor),
                    (Checked::Version(_, _, _, patch), Part::Patch) => Value::Number(*patch),
                    (Checked::Millis(millis), Part::Value) => Value::Number(*millis),
                    _ => return Ok(false), // a part its rule has not (refused at start)
                },
                Source::ProcessedAt => Value::Number(now_ms),
                Source::Topic => Value::Text(topic),
                Source::Partition => Value::Number(partition),
                Source::Offset => Value::Number(offset),
            };
            if !write(body, field, value) {
                return Ok(false); // the schema cannot hold it: the reference decides (encoding_failed)
            }
        }
        // The record's key and the tallied values, from the fields the declaration names.
        let Value::Text(key) = self.field_value(&checked, self.key, topic)? else {
            return Ok(false);
        };
        let (Some(device_type), Some(locale)) = (
            self.shared(py, &checked, self.tallies.0, topic)?,
            self.shared(py, &checked, self.tallies.1, topic)?,
        ) else {
            return Ok(false);
        };
        keys.append(PyBytes::new(py, key.as_bytes()))?;
        device_types.append(device_type)?;
        locales.append(locale)?;
        Ok(true)
    }

    /// The text value of field `index` (a key or a tallied field: text, never null).
    fn field_value<'v>(
        &self,
        checked: &'v [Checked<'_, '_>],
        index: usize,
        topic: &'v str,
    ) -> PyResult<Value<'v>> {
        Ok(match self.layout[index].source {
            Source::Input(input, Part::Value) => match &checked[input] {
                Checked::Text(text) => Value::Text(text),
                Checked::Shared(text) => Value::Text(text.to_str()?),
                Checked::Ip(canonical, _, _) => Value::Text(canonical),
                Checked::Version(text, ..) => Value::Text(text),
                _ => Value::Null,
            },
            Source::Topic => Value::Text(topic),
            _ => Value::Null,
        })
    }

    /// Field `index`'s text as a Python string: the shared one (a platform, a code) when there is one.
    fn shared<'py>(
        &self,
        py: Python<'py>,
        checked: &[Checked<'_, 'py>],
        index: usize,
        topic: &str,
    ) -> PyResult<Option<Bound<'py, PyString>>> {
        if let Source::Input(input, Part::Value) = self.layout[index].source {
            if let Checked::Shared(text) = &checked[input] {
                return Ok(Some(text.clone()));
            }
        }
        Ok(match self.field_value(checked, index, topic)? {
            Value::Text(text) => Some(PyString::new(py, text)),
            _ => None,
        })
    }
}

/// Write `value` as `field`'s Avro type; false if the type cannot hold it.
fn write(body: &mut Vec<u8>, field: &Field, value: Value<'_>) -> bool {
    match (field.null_index, &value) {
        (Some(null_index), Value::Null) => {
            write_long(body, null_index as i64);
            return true;
        }
        (None, Value::Null) => return false,
        (Some(null_index), _) => write_long(body, 1 - null_index as i64),
        (None, _) => {}
    }
    match (&field.base, value) {
        (Base::String, Value::Text(text)) => write_string(body, text),
        (Base::Int, Value::Number(n)) if i32::try_from(n).is_ok() => write_long(body, n),
        (Base::Long, Value::Number(n)) => write_long(body, n),
        (Base::Enum(symbols), Value::Text(symbol)) => match symbols.get(symbol) {
            Some(&index) => write_long(body, index),
            None => return false,
        },
        _ => return false,
    }
    true
}

#[pymodule]
fn kdp_native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<Kernel>()?;
    module.add_class::<insights::RecordTally>()?;
    module.add_function(wrap_pyfunction!(insights::insights_hash_id, module)?)?;
    Ok(())
}
