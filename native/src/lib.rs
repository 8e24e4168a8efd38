//! The converter's fast lane in native code: `streaming/native_path.py` builds a `Kernel` at start and
//! the router calls its `convert_batch` once per batch.
//!
//! Contract: for each message the kernel either writes the record itself or hands the message to
//! `fallback` (the pure-Python fused `convert`, which in turn hands anything unusual to the reference). It
//! writes a record only for the plainest message - ASCII JSON, one object, only the seven known keys, each
//! at most once, strings without escapes, the timestamp a plain integer or a string of digits - and only
//! when every check of the pure fast lane (`streaming/fast_path.py`, `_USUAL`) passes; then its bytes are
//! the pure lane's. Whatever it is unsure of, it declines: a decline can cost time, never a difference.
//! The record's layout (field order and Avro types) is given by Python from the registered schema.

mod insights;

use std::collections::HashMap;

use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple, PyType};

/// Where a schema field's value comes from (the processed record's fields, as `FIELD_LOCALS` names them).
#[derive(Clone, Copy)]
enum Source {
    UserId,
    DeviceId,
    DeviceType,
    Locale,
    Ip,
    IpVersion,
    IpClass,
    AppVersion,
    Major,
    Minor,
    Patch,
    EventTime,
    ProcessedAt,
    Topic,
    Partition,
    Offset,
}

/// How a schema field is written (the Avro types the login record uses).
enum Kind {
    String,
    /// A union of null and string; `null_index` is the branch index of null (0 or 1).
    NullableString { null_index: u8 },
    Int,
    Long,
    /// An enum: the index of each symbol.
    Enum(HashMap<String, i64>),
}

struct Field {
    source: Source,
    kind: Kind,
}

fn source_named(name: &str) -> PyResult<Source> {
    Ok(match name {
        "user_id" => Source::UserId,
        "device_id" => Source::DeviceId,
        "device_type" => Source::DeviceType,
        "locale" => Source::Locale,
        "ip" => Source::Ip,
        "ip_version" => Source::IpVersion,
        "ip_class" => Source::IpClass,
        "app_version" => Source::AppVersion,
        "app_version_major" => Source::Major,
        "app_version_minor" => Source::Minor,
        "app_version_patch" => Source::Patch,
        "event_time" => Source::EventTime,
        "processed_at" => Source::ProcessedAt,
        "source_topic" => Source::Topic,
        "source_partition" => Source::Partition,
        "source_offset" => Source::Offset,
        _ => return Err(PyValueError::new_err(format!("field {name:?} is not one the transform produces"))),
    })
}

/// A value of the processed record, before it is written.
enum Value<'a> {
    Text(Option<&'a str>),
    Number(i64),
}

/// The fields of one usual event, as slices of the message (no escapes, so the text is the value).
#[derive(Default)]
struct Event<'a> {
    user_id: Option<&'a str>,
    device_id: Option<&'a str>,
    device_type: Option<&'a str>,
    locale: Option<&'a str>,
    ip: Option<&'a str>,
    app_version: Option<&'a str>,
    timestamp: Option<i128>,
    seen: u8,
}

/// A JSON value as the kernel accepts it: a string without escapes, a non-negative integer, or null.
enum Json<'a> {
    Text(&'a str),
    Integer(i128),
    Null,
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

fn value_at(data: &[u8], at: usize) -> Option<(Json<'_>, usize)> {
    match *data.get(at)? {
        b'"' => string_at(data, at).map(|(text, next)| (Json::Text(text), next)),
        b'n' if data[at..].starts_with(b"null") => Some((Json::Null, at + 4)),
        b'0'..=b'9' => {
            let digits = data[at..].iter().take_while(|byte| byte.is_ascii_digit()).count();
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

/// The event if `data` is one plain JSON object of the known fields, each of its type or null; else None.
fn parse_event(data: &[u8]) -> Option<Event<'_>> {
    let mut event = Event::default();
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
            let bit = match key {
                "user_id" => 1,
                "device_id" => 2,
                "device_type" => 4,
                "locale" => 8,
                "ip" => 16,
                "app_version" => 32,
                "timestamp" => 64,
                _ => return None, // an unknown key: the pure path decides
            };
            if event.seen & bit != 0 {
                return None; // a repeated key: the pure path decides
            }
            event.seen |= bit;
            let text = match value {
                Json::Text(text) => Some(text),
                Json::Null => None,
                Json::Integer(number) if key == "timestamp" => {
                    event.timestamp = Some(number);
                    None
                }
                Json::Integer(_) => return None, // a wrong type: the reference decides
            };
            match key {
                "user_id" => event.user_id = text,
                "device_id" => event.device_id = text,
                "device_type" => event.device_type = text,
                "locale" => event.locale = text,
                "ip" => event.ip = text,
                "app_version" => event.app_version = text,
                _ => {
                    if let Some(digits) = text {
                        // `str.isdigit()` on ASCII, at most 19 of them, as the pure lane takes them
                        if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                            return None;
                        }
                        event.timestamp = Some(digits.parse().ok()?);
                    }
                }
            }
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
    (skip_space(data, at) == data.len()).then_some(event)
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
        *octet = std::str::from_utf8(part).ok()?.parse::<u16>().ok()?.try_into().ok()?;
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

/// The configuration of the fast lane; built once at start by `streaming/native_path.py`.
#[pyclass(frozen, module = "kdp_native")]
struct Kernel {
    layout: Vec<Field>,
    prefix: Vec<u8>,
    max_message_bytes: usize,
    min_event_time_ms: i64,
    max_future_ms: i64,
    locales: HashMap<String, Py<PyString>>,
    unknown_device_type: Py<PyString>,
    device_types: Py<PyDict>,
    app_versions: Py<PyDict>,
    v4_by_first_octet: Vec<Option<String>>,
    classify_ipv4: Py<PyAny>,
    classify: Py<PyAny>,
    fallback: Py<PyAny>,
    converted: Py<PyType>,
}

/// What one usual message becomes besides its record's body: its key and the two tallied fields.
struct Output<'a, 'py> {
    user_id: &'a str,
    device_type: Bound<'py, PyString>,
    locale: Bound<'py, PyString>,
}

#[pymethods]
impl Kernel {
    /// `layout`: (field name, kind, symbols) per schema field in order; kind is "string", "null|string",
    /// "string|null", "int", "long" or "enum" (symbols: the enum's symbols; else an empty list).
    #[new]
    #[allow(clippy::too_many_arguments)]
    fn new(
        layout: Vec<(String, String, Vec<String>)>,
        prefix: Vec<u8>,
        max_message_bytes: usize,
        min_event_time_ms: i64,
        max_future_ms: i64,
        locales: Vec<Bound<'_, PyString>>,
        unknown_device_type: Bound<'_, PyString>,
        device_types: Bound<'_, PyDict>,
        app_versions: Bound<'_, PyDict>,
        v4_by_first_octet: Vec<Option<String>>,
        classify_ipv4: Bound<'_, PyAny>,
        classify: Bound<'_, PyAny>,
        fallback: Bound<'_, PyAny>,
        converted: Bound<'_, PyType>,
    ) -> PyResult<Self> {
        let mut fields = Vec::new();
        for (name, kind, symbols) in layout {
            let kind = match kind.as_str() {
                "string" => Kind::String,
                "null|string" => Kind::NullableString { null_index: 0 },
                "string|null" => Kind::NullableString { null_index: 1 },
                "int" => Kind::Int,
                "long" => Kind::Long,
                "enum" => Kind::Enum(symbols.into_iter().zip(0..).collect()),
                _ => return Err(PyValueError::new_err(format!("field {name:?}: kind {kind:?} is not supported"))),
            };
            fields.push(Field { source: source_named(&name)?, kind });
        }
        if v4_by_first_octet.len() != 256 {
            return Err(PyValueError::new_err("v4_by_first_octet must have 256 entries"));
        }
        let locales = locales.into_iter().map(|l| Ok((l.to_str()?.to_owned(), l.unbind()))).collect::<PyResult<_>>()?;
        Ok(Kernel {
            layout: fields,
            prefix,
            max_message_bytes,
            min_event_time_ms,
            max_future_ms,
            locales,
            unknown_device_type: unknown_device_type.unbind(),
            device_types: device_types.unbind(),
            app_versions: app_versions.unbind(),
            v4_by_first_octet,
            classify_ipv4: classify_ipv4.unbind(),
            classify: classify.unbind(),
            fallback: fallback.unbind(),
            converted: converted.unbind(),
        })
    }

    /// The fields of `ConvertedBatch` for `messages` (the contract of `streaming.conversion.ConvertBatch`).
    fn convert_batch<'py>(
        &self,
        py: Python<'py>,
        messages: &Bound<'py, PyAny>,
        now_ms: i64,
        oldest_ms: i64,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let (values, keys) = (PyList::empty(py), PyList::empty(py));
        let (device_types, locales) = (PyList::empty(py), PyList::empty(py));
        let (rejected, run_starts, run_ends) = (PyList::empty(py), PyList::empty(py), PyList::empty(py));
        let mut bytes_in: i64 = 0;
        // The current run's topic and partition: as Python objects (compared as the pure lane compares
        // them, `!=`) and, when they are a str and an int, as Rust values (compared without Python).
        let (mut run_topic, mut run_partition) = (py.None().into_bound(py), py.None().into_bound(py));
        let mut run: Option<(String, i64)> = None;
        let mut previous: Option<Bound<'py, PyAny>> = None;
        let mut body = Vec::with_capacity(256);
        for message in messages.try_iter()? {
            let message = message?;
            let value = message.call_method0(intern!(py, "value"))?;
            let topic_object = message.call_method0(intern!(py, "topic"))?;
            let partition_object = message.call_method0(intern!(py, "partition"))?;
            let offset_object = message.call_method0(intern!(py, "offset"))?;
            // A message without a str topic and int partition and offset (never from Kafka) is the pure
            // path's to judge.
            let topic = topic_object.cast::<PyString>().ok().map(|t| t.to_str()).transpose()?;
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
            let usual = match (value.cast::<PyBytes>(), topic, partition, offset) {
                (Ok(bytes), Some(topic), Some(partition), Some(offset)) => self.usual(
                    py,
                    bytes.as_bytes(),
                    (topic, partition, offset),
                    now_ms,
                    oldest_ms,
                    &mut body,
                )?,
                _ => None,
            };
            match usual {
                Some(output) => {
                    values.append(PyBytes::new(py, &body))?;
                    keys.append(PyBytes::new(py, output.user_id.as_bytes()))?;
                    device_types.append(output.device_type)?;
                    locales.append(output.locale)?;
                }
                None => {
                    let args = (&value, &topic_object, &partition_object, &offset_object, now_ms, oldest_ms);
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
    /// The output of the usual message `data`, its record's body written into `body`, or None to hand the
    /// message to the pure path (an exception from a Python helper it calls, too: the pure lane would
    /// hand such a message to the reference).
    fn usual<'a, 'py>(
        &self,
        py: Python<'py>,
        data: &'a [u8],
        (topic, partition, offset): (&str, i64, i64),
        now_ms: i64,
        oldest_ms: i64,
        body: &mut Vec<u8>,
    ) -> PyResult<Option<Output<'a, 'py>>> {
        if data.len() > self.max_message_bytes || !data.is_ascii() {
            return Ok(None);
        }
        let Some(event) = parse_event(data) else { return Ok(None) };
        let (Some(user_id), Some(locale_text), Some(ip_text), Some(app_version), Some(timestamp)) =
            (event.user_id, event.locale, event.ip, event.app_version, event.timestamp)
        else {
            return Ok(None);
        };
        if !is_lower_uuid(user_id) || !event.device_id.is_none_or(is_lower_uuid) {
            return Ok(None);
        }
        let Some(locale) = self.locales.get(locale_text) else { return Ok(None) };
        // The transform's memo tables, read as the pure lane reads them: a value not yet seen is declined.
        let device_type = match event.device_type {
            None => self.unknown_device_type.bind(py).clone(),
            Some(text) => match self.device_types.bind(py).get_item(text)? {
                Some(found) => match found.cast_into::<PyString>() {
                    Ok(found) if !found.to_str()?.is_empty() => found,
                    _ => return Ok(None),
                },
                None => return Ok(None),
            },
        };
        let version = match self.app_versions.bind(py).get_item(app_version)? {
            Some(found) if !found.is_none() => match found.extract::<(i64, i64, i64)>() {
                Ok(version) => version,
                Err(_) => return Ok(None),
            },
            _ => return Ok(None),
        };
        // The address: IPv6 through the same `classify` as the pure lane; IPv4 by the first-octet table.
        let ipv6;
        let (ip, ip_version, ip_class): (&str, i64, String) = if ip_text.contains(':') {
            let classified = self.classify.bind(py).call1((ip_text,));
            let Some(classified) = classified.ok().and_then(|c| c.extract::<(String, i64, String)>().ok()) else {
                return Ok(None);
            };
            ipv6 = classified;
            (ipv6.0.as_str(), ipv6.1, ipv6.2.clone())
        } else {
            let Some(octets) = dotted_quad(ip_text) else { return Ok(None) };
            let class = match &self.v4_by_first_octet[octets[0] as usize] {
                Some(class) if !class.is_empty() => class.clone(),
                _ => match self.classify_ipv4.bind(py).call1((PyBytes::new(py, &octets),)) {
                    Ok(class) => match class.extract::<String>() {
                        Ok(class) if !class.is_empty() => class,
                        _ => return Ok(None),
                    },
                    Err(_) => return Ok(None),
                },
            };
            (ip_text, 4, class)
        };
        // The event time as the pure lane takes it: epoch seconds, else milliseconds, inside the window.
        let (minimum, latest) = (self.min_event_time_ms as i128, now_ms as i128 + self.max_future_ms as i128);
        let mut event_time = timestamp * 1000;
        if !(minimum <= event_time && event_time <= latest) {
            event_time = timestamp;
        }
        if !(minimum <= event_time && event_time <= latest && event_time >= oldest_ms as i128) {
            return Ok(None);
        }
        let event_time = event_time as i64;
        body.clear();
        body.extend_from_slice(&self.prefix);
        let device_type_text = device_type.to_str()?;
        for field in &self.layout {
            let value = match field.source {
                Source::UserId => Value::Text(Some(user_id)),
                Source::DeviceId => Value::Text(event.device_id),
                Source::DeviceType => Value::Text(Some(device_type_text)),
                Source::Locale => Value::Text(Some(locale_text)),
                Source::Ip => Value::Text(Some(ip)),
                Source::IpVersion => Value::Number(ip_version),
                Source::IpClass => Value::Text(Some(ip_class.as_str())),
                Source::AppVersion => Value::Text(Some(app_version)),
                Source::Major => Value::Number(version.0),
                Source::Minor => Value::Number(version.1),
                Source::Patch => Value::Number(version.2),
                Source::EventTime => Value::Number(event_time),
                Source::ProcessedAt => Value::Number(now_ms),
                Source::Topic => Value::Text(Some(topic)),
                Source::Partition => Value::Number(partition),
                Source::Offset => Value::Number(offset),
            };
            let written = match (&field.kind, value) {
                (Kind::String, Value::Text(Some(text))) => {
                    write_string(body, text);
                    true
                }
                (Kind::NullableString { null_index }, Value::Text(text)) => {
                    match text {
                        None => write_long(body, *null_index as i64),
                        Some(text) => {
                            write_long(body, 1 - *null_index as i64);
                            write_string(body, text);
                        }
                    }
                    true
                }
                (Kind::Int, Value::Number(n)) if i32::try_from(n).is_ok() => {
                    write_long(body, n);
                    true
                }
                (Kind::Long, Value::Number(n)) => {
                    write_long(body, n);
                    true
                }
                (Kind::Enum(symbols), Value::Text(Some(symbol))) => match symbols.get(symbol) {
                    Some(&index) => {
                        write_long(body, index);
                        true
                    }
                    None => false,
                },
                _ => false,
            };
            if !written {
                return Ok(None); // the schema cannot hold it: the reference decides (encoding_failed)
            }
        }
        Ok(Some(Output { user_id, device_type, locale: locale.bind(py).clone() }))
    }
}

#[pymodule]
fn kdp_native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<Kernel>()?;
    module.add_class::<insights::RecordTally>()?;
    module.add_function(wrap_pyfunction!(insights::insights_hash_id, module)?)?;
    Ok(())
}
