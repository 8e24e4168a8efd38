//! The hourly insights' record tally in native code: `orchestration/insights/record_tally.py` builds a
//! `RecordTally` per window and `streaming.topic_reader.read_range_batches` hands it every batch the consumer
//! returns.
//!
//! Contract: the same answers as `PythonRecordVisitor` (the reference), state for state. Per message of a
//! pending partition below its end: read the seven fields the insights use straight from the Avro body,
//! stepping over the others by the *type programs* Python compiled from the writer schema of the header's
//! schema id (`orchestration/insights/avro_layout.py` documents the program and what is undecodable); place
//! the record in the window (`orchestration/insights/placement.py`, `Window.place_record`); count it. Distinct
//! users and devices go into bottom-k sketches (`orchestration/insights/sketch.py`: same hash, same rebuild
//! rule, so the same kept entries). `state()` hands everything back for Python to build its `WindowTally`.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

const NULL: i64 = 0;
const BOOLEAN: i64 = 1;
const LONG: i64 = 2;
const FLOAT: i64 = 3;
const DOUBLE: i64 = 4;
const STRING: i64 = 5;
const BYTES: i64 = 6;
const FIXED: i64 = 7;
const ENUM: i64 = 8;
const UNION: i64 = 9;
const RECORD: i64 = 10;
const ARRAY: i64 = 11;
const MAP: i64 = 12;
const TIMESTAMP_MILLIS: i64 = 13;

const USER_ID: usize = 0;
const DEVICE_ID: usize = 1;
const DEVICE_TYPE: usize = 2;
const LOCALE: usize = 3;
const APP_VERSION: usize = 4;
const EVENT_TIME: usize = 5;
const PROCESSED_AT: usize = 6;
const TEXT_SLOTS: usize = 5;

const MIN_DATETIME_MS: i64 = -62_135_596_800_000;
const MAX_DATETIME_MS: i64 = 253_402_300_799_999;
const MINUTE_MS: i64 = 60_000;
const NONE_LABEL: &str = "(none)";
const HEADER_BYTES: usize = 5;

const K: usize = 65_536;
const CAPACITY: usize = 2 * K;
const EXACT: u64 = u64::MAX;

const COUNTED: usize = 0;
const LATE: usize = 1;
const OUTSIDE: usize = 2;
const UNDECODABLE: usize = 3;
const OUTCOMES: [&str; 4] = ["counted", "late", "outside", "undecodable"];

/// FNV-1a 64 then the MurmurHash3 finalizer: `sketch.hash_id`, bit for bit.
fn hash_id(text: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in text {
        h = (h ^ byte as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// FNV-1a for the small text maps (device types, locales, versions), cheaper than SipHash on short keys.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &byte in bytes {
            h = (h ^ byte as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// The sketches' keys are already uniform 64-bit hashes: used as they are.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys")
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type TextMap<V> = HashMap<Box<str>, V, BuildHasherDefault<Fnv>>;

/// `sketch.DistinctSketch`: hash -> (time, value index) of the latest update, for the hashes below theta.
struct Sketch {
    theta: u64,
    entries: HashMap<u64, (i64, u32), BuildHasherDefault<Identity>>,
}

impl Sketch {
    fn new() -> Self {
        Sketch {
            theta: EXACT,
            entries: HashMap::default(),
        }
    }

    fn update(&mut self, key_hash: u64, when: i64, value: u32) {
        if key_hash >= self.theta {
            return;
        }
        match self.entries.get_mut(&key_hash) {
            Some(seen) => {
                if when >= seen.0 {
                    *seen = (when, value);
                }
            }
            None => {
                self.entries.insert(key_hash, (when, value));
                if self.entries.len() > CAPACITY {
                    self.rebuild();
                }
            }
        }
    }

    /// Keep the K smallest hashes; theta becomes the next smallest (itself no longer kept).
    fn rebuild(&mut self) {
        let mut hashes: Vec<u64> = self.entries.keys().copied().collect();
        let (_, kth, _) = hashes.select_nth_unstable(K);
        let theta = *kth;
        self.theta = theta;
        self.entries.retain(|h, _| *h < theta);
    }

    fn state<'py>(
        &self,
        py: Python<'py>,
        values: Option<&[Box<str>]>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let empty = PyString::new(py, "");
        let texts: Vec<Bound<'py, PyString>> = values.map_or(Vec::new(), |v| {
            v.iter().map(|t| PyString::new(py, t)).collect()
        });
        let entries = PyDict::new(py);
        for (h, (when, value)) in &self.entries {
            let text = texts.get(*value as usize).unwrap_or(&empty);
            entries.set_item(*h, (*when, text))?;
        }
        (self.theta, entries).into_pyobject(py)
    }
}

/// What a type program reads: None when the body does not hold such a value (undecodable).
struct Body<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Body<'a> {
    fn long(&mut self) -> Option<i64> {
        let mut result: u64 = 0;
        let mut shift = 0u32;
        loop {
            if shift > 63 {
                return None;
            }
            let byte = *self.data.get(self.at)?;
            self.at += 1;
            result |= ((byte & 0x7f) as u64).wrapping_shl(shift);
            if byte < 0x80 {
                return Some(((result >> 1) as i64) ^ -((result & 1) as i64));
            }
            shift += 7;
        }
    }

    fn take(&mut self, size: i64) -> Option<&'a [u8]> {
        if size < 0 || size as u64 > (self.data.len() - self.at) as u64 {
            return None;
        }
        let start = self.at;
        self.at += size as usize;
        Some(&self.data[start..self.at])
    }

    fn string(&mut self) -> Option<&'a str> {
        let size = self.long()?;
        std::str::from_utf8(self.take(size)?).ok()
    }

    /// Step over one value of the type at `program[pc]`; the index after that type's program.
    fn skip(&mut self, program: &[i64], pc: usize) -> Option<usize> {
        match *program.get(pc)? {
            NULL => Some(pc + 1),
            BOOLEAN => self.take(1).map(|_| pc + 1),
            LONG => self.long().map(|_| pc + 1),
            TIMESTAMP_MILLIS => self
                .long()
                .filter(|t| (MIN_DATETIME_MS..=MAX_DATETIME_MS).contains(t))
                .map(|_| pc + 1),
            FLOAT => self.take(4).map(|_| pc + 1),
            DOUBLE => self.take(8).map(|_| pc + 1),
            STRING => self.string().map(|_| pc + 1),
            BYTES => {
                let size = self.long()?;
                self.take(size).map(|_| pc + 1)
            }
            FIXED => self.take(*program.get(pc + 1)?).map(|_| pc + 2),
            ENUM => {
                let index = self.long()?;
                (0 <= index && index < *program.get(pc + 1)?).then_some(pc + 2)
            }
            UNION => {
                let index = self.long()?;
                if !(0 <= index && index < *program.get(pc + 1)?) {
                    return None;
                }
                let mut branch = pc + 2;
                for _ in 0..index {
                    branch = program_end(program, branch)?;
                }
                self.skip(program, branch)?;
                program_end(program, pc)
            }
            RECORD => {
                let mut inner = pc + 2;
                for _ in 0..*program.get(pc + 1)? {
                    inner = self.skip(program, inner)?;
                }
                Some(inner)
            }
            op @ (ARRAY | MAP) => loop {
                let mut count = self.long()?;
                if count == 0 {
                    return program_end(program, pc);
                }
                if count < 0 {
                    count = count.checked_neg()?;
                    self.long()?;
                }
                if count as u64 > self.data.len() as u64 {
                    return None;
                }
                for _ in 0..count {
                    if op == MAP {
                        self.string()?;
                    }
                    self.skip(program, pc + 1)?;
                }
            },
            _ => None,
        }
    }
}

/// The index just after the type program that starts at `pc`.
fn program_end(program: &[i64], pc: usize) -> Option<usize> {
    match *program.get(pc)? {
        FIXED | ENUM => Some(pc + 2),
        UNION | RECORD => {
            let mut end = pc + 2;
            for _ in 0..*program.get(pc + 1)? {
                end = program_end(program, end)?;
            }
            Some(end)
        }
        ARRAY | MAP => program_end(program, pc + 1),
        _ => Some(pc + 1),
    }
}

/// Per top-level field up to the last one read: the slot it fills (negative: skipped) and its type program.
type Layout = Vec<(i64, Vec<i64>)>;

/// The fields of one record: the texts (None: null or absent) and the two times.
struct Fields<'a> {
    texts: [Option<&'a str>; TEXT_SLOTS],
    event_ms: i64,
    processed_ms: i64,
}

/// `avro_layout.read_fields`: None when the body does not hold a record of the layout (undecodable).
fn read_fields<'a>(layout: &Layout, data: &'a [u8]) -> Option<Fields<'a>> {
    let mut body = Body { data, at: 0 };
    let mut texts: [Option<&'a str>; TEXT_SLOTS] = [None; TEXT_SLOTS];
    let mut times: [Option<i64>; 2] = [None, None];
    for (slot, program) in layout {
        if *slot < 0 {
            body.skip(program, 0)?;
            continue;
        }
        let slot = *slot as usize;
        match program[0] {
            STRING => texts[slot] = Some(body.string()?),
            UNION => {
                let index = body.long()?;
                if !(0 <= index && index < program[1]) {
                    return None;
                }
                if program[2 + index as usize] == STRING {
                    texts[slot] = Some(body.string()?);
                }
            }
            op => {
                let value = body.long()?;
                if op == TIMESTAMP_MILLIS && !(MIN_DATETIME_MS..=MAX_DATETIME_MS).contains(&value) {
                    return None;
                }
                times[slot - EVENT_TIME] = Some(value);
            }
        }
    }
    Some(Fields {
        texts,
        event_ms: times[0]?,
        processed_ms: times[PROCESSED_AT - EVENT_TIME]?,
    })
}

enum Place {
    Outcome(usize),
    Beyond,
}

/// Counts of a text breakdown; each distinct text allocated once.
fn count(map: &mut TextMap<u64>, text: Option<&str>) {
    let key = text.filter(|t| !t.is_empty()).unwrap_or(NONE_LABEL);
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.into(), 1);
        }
    }
}

#[pyclass(unsendable, module = "kdp_native")]
pub struct RecordTally {
    start_ms: i64,
    end_ms: i64,
    slack_ms: i64,
    stop_ms: i64,
    layout_of: Py<PyAny>,
    read_error: Py<PyAny>,
    layouts: HashMap<u32, Option<Layout>>,
    records: u64,
    device_types: TextMap<u64>,
    locales: TextMap<u64>,
    versions: TextMap<u32>,
    version_names: Vec<Box<str>>,
    version_counts: Vec<u64>,
    minutes: Vec<u64>,
    newest_event_ms: Option<i64>,
    late_records: u64,
    oldest_late_event_ms: Option<i64>,
    max_late_delay_ms: Option<i128>,
    users: Sketch,
    devices: Sketch,
    answers: HashMap<i32, [u64; 4]>,
}

impl RecordTally {
    fn window_of(&self, timestamp_ms: i128) -> i128 {
        let length = (self.end_ms - self.start_ms) as i128;
        timestamp_ms - timestamp_ms.rem_euclid(length)
    }

    /// `placement.Window.place_record`.
    fn place(&self, event_ms: i64, processed_ms: i64) -> Place {
        if processed_ms >= self.stop_ms {
            return Place::Beyond;
        }
        let length = (self.end_ms - self.start_ms) as i128;
        let event_window = self.window_of(event_ms as i128);
        if (processed_ms as i128) < event_window + length + self.slack_ms as i128 {
            let counted = event_window == self.start_ms as i128;
            return Place::Outcome(if counted { COUNTED } else { OUTSIDE });
        }
        let late = self.window_of(processed_ms as i128) == self.start_ms as i128;
        Place::Outcome(if late { LATE } else { OUTSIDE })
    }

    fn layout(&mut self, py: Python<'_>, schema_id: u32) -> PyResult<Option<&Layout>> {
        if !self.layouts.contains_key(&schema_id) {
            let answer = self.layout_of.bind(py).call1((schema_id,))?;
            let layout: Option<Layout> = answer.extract()?;
            self.layouts.insert(schema_id, layout);
        }
        Ok(self.layouts[&schema_id].as_ref())
    }

    fn visit(&mut self, py: Python<'_>, value: &[u8]) -> PyResult<Place> {
        if value.len() < HEADER_BYTES || value[0] != 0 {
            return Ok(Place::Outcome(UNDECODABLE));
        }
        let schema_id = u32::from_be_bytes([value[1], value[2], value[3], value[4]]);
        if self.layout(py, schema_id)?.is_none() {
            return Ok(Place::Outcome(UNDECODABLE));
        }
        let layout = self.layouts[&schema_id].as_ref().expect("checked above");
        let Some(fields) = read_fields(layout, &value[HEADER_BYTES..]) else {
            return Ok(Place::Outcome(UNDECODABLE));
        };
        let place = self.place(fields.event_ms, fields.processed_ms);
        match place {
            Place::Outcome(COUNTED) => self.add(&fields),
            Place::Outcome(LATE) => self.add_late(fields.event_ms, fields.processed_ms),
            _ => {}
        }
        Ok(place)
    }

    /// `WindowTally.add_fields`.
    fn add(&mut self, fields: &Fields<'_>) {
        self.records += 1;
        count(&mut self.device_types, fields.texts[DEVICE_TYPE]);
        count(&mut self.locales, fields.texts[LOCALE]);
        let version_text = fields.texts[APP_VERSION]
            .filter(|t| !t.is_empty())
            .unwrap_or(NONE_LABEL);
        let version = match self.versions.get(version_text) {
            Some(index) => *index,
            None => {
                let index = self.version_names.len() as u32;
                self.versions.insert(version_text.into(), index);
                self.version_names.push(version_text.into());
                self.version_counts.push(0);
                index
            }
        };
        self.version_counts[version as usize] += 1;
        let event_ms = fields.event_ms;
        if let Some(user) = fields.texts[USER_ID].filter(|t| !t.is_empty()) {
            self.users.update(hash_id(user.as_bytes()), 0, 0);
        }
        if let Some(device) = fields.texts[DEVICE_ID].filter(|t| !t.is_empty()) {
            self.devices
                .update(hash_id(device.as_bytes()), event_ms, version);
        }
        let minute = ((event_ms - self.start_ms) / MINUTE_MS) as usize;
        if minute < self.minutes.len() {
            self.minutes[minute] += 1;
        }
        if self.newest_event_ms.is_none_or(|newest| event_ms > newest) {
            self.newest_event_ms = Some(event_ms);
        }
    }

    /// `WindowTally.add_late`.
    fn add_late(&mut self, event_ms: i64, processed_ms: i64) {
        self.late_records += 1;
        if self
            .oldest_late_event_ms
            .is_none_or(|oldest| event_ms < oldest)
        {
            self.oldest_late_event_ms = Some(event_ms);
        }
        let delay = processed_ms as i128 - event_ms as i128;
        if self.max_late_delay_ms.is_none_or(|largest| delay > largest) {
            self.max_late_delay_ms = Some(delay);
        }
    }
}

#[pymethods]
impl RecordTally {
    #[new]
    fn new(
        start_ms: i64,
        end_ms: i64,
        slack_ms: i64,
        stop_ms: i64,
        layout_of: Py<PyAny>,
        read_error: Py<PyAny>,
    ) -> PyResult<Self> {
        if end_ms <= start_ms {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "empty window: [{start_ms}, {end_ms})"
            )));
        }
        let minutes = ((end_ms - start_ms) + MINUTE_MS - 1) / MINUTE_MS;
        Ok(RecordTally {
            start_ms,
            end_ms,
            slack_ms,
            stop_ms,
            layout_of,
            read_error,
            layouts: HashMap::new(),
            records: 0,
            device_types: TextMap::default(),
            locales: TextMap::default(),
            versions: TextMap::default(),
            version_names: Vec::new(),
            version_counts: Vec::new(),
            minutes: vec![0; minutes as usize],
            newest_event_ms: None,
            late_records: 0,
            oldest_late_event_ms: None,
            max_late_delay_ms: None,
            users: Sketch::new(),
            devices: Sketch::new(),
            answers: HashMap::new(),
        })
    }

    /// `PythonRecordVisitor.visit_batch`: see `streaming.topic_reader.read_range_batches` for the contract.
    fn visit_batch(
        &mut self,
        py: Python<'_>,
        messages: &Bound<'_, PyList>,
        ends: &Bound<'_, PyDict>,
    ) -> PyResult<()> {
        let mut limits: Vec<(i32, i64, bool)> = Vec::with_capacity(ends.len());
        for (partition, end) in ends.iter() {
            limits.push((partition.extract()?, end.extract()?, false));
        }
        let mut last = 0usize;
        for message in messages.iter() {
            let error = message.call_method0(intern!(py, "error"))?;
            if !error.is_none() {
                let topic = message.call_method0(intern!(py, "topic"))?;
                let partition = message.call_method0(intern!(py, "partition"))?;
                let text = format!("reading {topic}/{partition} failed: {error}");
                return Err(PyErr::from_value(self.read_error.bind(py).call1((text,))?));
            }
            let partition: i32 = message.call_method0(intern!(py, "partition"))?.extract()?;
            if last >= limits.len() || limits[last].0 != partition {
                match limits.iter().position(|limit| limit.0 == partition) {
                    Some(index) => last = index,
                    None => continue,
                }
            }
            let Some(offset) = message
                .call_method0(intern!(py, "offset"))?
                .extract::<Option<i64>>()?
            else {
                continue;
            };
            if offset >= limits[last].1 {
                continue; // fetched past the range (prefetch), or after a record beyond the window: not ours
            }
            let value = message.call_method0(intern!(py, "value"))?;
            let place = match value.cast::<PyBytes>() {
                Ok(bytes) => self.visit(py, bytes.as_bytes())?,
                Err(_) => Place::Outcome(UNDECODABLE),
            };
            match place {
                Place::Beyond => limits[last] = (partition, offset, true),
                Place::Outcome(outcome) => {
                    self.answers.entry(partition).or_insert([0; 4])[outcome] += 1
                }
            }
        }
        for (partition, end, lowered) in limits {
            if lowered {
                ends.set_item(partition, end)?;
            }
        }
        Ok(())
    }

    /// Everything counted, for Python's `WindowTally` (see `NativeRecordVisitor.finish`).
    fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let state = PyDict::new(py);
        let texts = |map: &TextMap<u64>| -> PyResult<Bound<'py, PyDict>> {
            let dict = PyDict::new(py);
            for (text, n) in map {
                dict.set_item(&**text, *n)?;
            }
            Ok(dict)
        };
        state.set_item("records", self.records)?;
        state.set_item("device_types", texts(&self.device_types)?)?;
        state.set_item("locales", texts(&self.locales)?)?;
        let versions = PyDict::new(py);
        for (name, n) in self.version_names.iter().zip(&self.version_counts) {
            versions.set_item(&**name, *n)?;
        }
        state.set_item("app_versions", versions)?;
        let minutes = PyDict::new(py);
        for (minute, n) in self.minutes.iter().enumerate() {
            if *n > 0 {
                minutes.set_item(minute, *n)?;
            }
        }
        state.set_item("minutes", minutes)?;
        state.set_item("newest_event_ms", self.newest_event_ms)?;
        state.set_item("late_records", self.late_records)?;
        state.set_item("oldest_late_event_ms", self.oldest_late_event_ms)?;
        state.set_item("max_late_delay_ms", self.max_late_delay_ms)?;
        state.set_item("users", self.users.state(py, None)?)?;
        state.set_item(
            "devices",
            self.devices.state(py, Some(&self.version_names))?,
        )?;
        let answers = PyDict::new(py);
        for (partition, counts) in &self.answers {
            let per = PyDict::new(py);
            for (name, n) in OUTCOMES.iter().zip(counts) {
                per.set_item(*name, *n)?;
            }
            answers.set_item(*partition, per)?;
        }
        state.set_item("answers", answers)?;
        Ok(state)
    }
}

/// The 64-bit id hash, for the tests that compare it with Python's.
#[pyfunction]
pub fn insights_hash_id(text: &str) -> u64 {
    hash_id(text.as_bytes())
}
