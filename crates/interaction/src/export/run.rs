//! The run of one export job on its own thread: every type's queries read page by page
//! from the pinned view (memory: about one page per query), their union taken in write
//! order without repeats, each resource written as one NDJSON line (de-identified when
//! asked), files split at `max_file_bytes`, progress reported, cancellation honoured
//! between pages.

use std::io::Write;
use std::sync::atomic::Ordering;

use tsunagu_store::{PinnedView, ResourceVersion, SearchQuery};

use super::{Exports, Job, OutputFile, Status, TypePlan};
use crate::error::InteractionError;

/// Bytes of bodies one page of one stream holds (past its first resource).
const STREAM_PAGE_BYTES: u64 = 16 * 1024 * 1024;

/// One query read in pages of `page` resources, in write order.
struct Stream<'a> {
    view: &'a dyn PinnedView,
    query: SearchQuery,
    buffer: std::collections::VecDeque<ResourceVersion>,
    more: bool,
}

impl Stream<'_> {
    fn head(&mut self) -> Result<Option<i64>, InteractionError> {
        if self.buffer.is_empty() && self.more {
            let page = self.view.search(&self.query)?;
            self.more = page.more;
            if let Some(last) = page.resources.last() {
                self.query.after_seq = Some(last.seq);
            }
            self.buffer.extend(page.resources);
        }
        Ok(self.buffer.front().map(|v| v.seq))
    }
}

/// The union of several streams, in write order, each resource once.
struct Union<'a> {
    streams: Vec<Stream<'a>>,
}

impl Union<'_> {
    fn next(&mut self) -> Result<Option<ResourceVersion>, InteractionError> {
        let mut best: Option<i64> = None;
        for s in &mut self.streams {
            if let Some(seq) = s.head()? {
                best = Some(best.map_or(seq, |b| b.min(seq)));
            }
        }
        let Some(seq) = best else { return Ok(None) };
        let mut out = None;
        for s in &mut self.streams {
            if s.buffer.front().is_some_and(|v| v.seq == seq) {
                out = s.buffer.pop_front();
            }
        }
        Ok(out)
    }
}

struct Writer {
    dir: std::path::PathBuf,
    ty: String,
    max_bytes: u64,
    file: Option<(std::io::BufWriter<std::fs::File>, String, u64, u64)>,
    index: usize,
    done: Vec<OutputFile>,
}

impl Writer {
    fn line(&mut self, bytes: &[u8]) -> Result<(), InteractionError> {
        let io = |e: std::io::Error| super::io_error("write output", e);
        if self
            .file
            .as_ref()
            .is_some_and(|(_, _, written, _)| *written > 0 && written + bytes.len() as u64 + 1 > self.max_bytes)
        {
            self.close()?;
        }
        if self.file.is_none() {
            self.index += 1;
            let name = format!("{}-{}.ndjson", self.ty, self.index);
            let f = std::fs::File::create(self.dir.join(&name)).map_err(io)?;
            self.file = Some((std::io::BufWriter::with_capacity(256 * 1024, f), name, 0, 0));
        }
        if let Some((w, _, written, count)) = &mut self.file {
            w.write_all(bytes).map_err(io)?;
            w.write_all(b"\n").map_err(io)?;
            *written += bytes.len() as u64 + 1;
            *count += 1;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), InteractionError> {
        if let Some((mut w, name, _, count)) = self.file.take() {
            w.flush().map_err(|e| super::io_error("write output", e))?;
            w.into_inner().map_err(|e| super::io_error("write output", e.into_error()))?.sync_all().ok();
            self.done.push(OutputFile { ty: self.ty.clone(), file: name, count });
        }
        Ok(())
    }
}

pub(super) fn run(
    exports: &Exports,
    job: &Job,
    view: Box<dyn PinnedView>,
    plans: Vec<TypePlan>,
    deid: Option<tsunagu_deid::Deidentifier>,
) {
    let outcome = write_all(exports, job, view.as_ref(), &plans, deid.as_ref());
    drop(view);
    match outcome {
        Ok(Some((outputs, k))) => exports.finish(job, |st| {
            st.status = Status::Completed;
            st.outputs = outputs;
            st.progress = "done".into();
            st.deid = deid.as_ref().map(|d| (d.policy().name.clone(), k));
        }),
        // Cancelled: the files are removed by `cancel`.
        Ok(None) => {}
        Err(e) => {
            let dir = exports.job_dir(&job.state.lock().id);
            super::remove_outputs(&dir);
            exports.finish(job, |st| {
                st.status = Status::Failed;
                st.outputs.clear();
                st.failure = Some((e.message(crate::Lang::En), e.message(crate::Lang::Ja)));
            })
        }
    }
}

type Finished = (Vec<OutputFile>, Option<u64>);

fn write_all(
    exports: &Exports,
    job: &Job,
    view: &dyn PinnedView,
    plans: &[TypePlan],
    deid: Option<&tsunagu_deid::Deidentifier>,
) -> Result<Option<Finished>, InteractionError> {
    let dir = exports.job_dir(&job.state.lock().id);
    let mut outputs = Vec::new();
    let mut k = tsunagu_deid::KAnonymity::default();
    let mut total: u64 = 0;
    for (i, plan) in plans.iter().enumerate() {
        let per_stream = (exports.config.page_size / plan.queries.len().max(1)).max(10);
        let streams = plan
            .queries
            .iter()
            .map(|q| {
                let mut query = q.clone();
                query.count = per_stream;
                query.total = false;
                // A page of large resources is cut and continued, not held whole.
                query.max_bytes = Some(tsunagu_store::ByteCap { max: STREAM_PAGE_BYTES, first_always: true });
                Stream { view, query, buffer: Default::default(), more: true }
            })
            .collect();
        let mut union = Union { streams };
        let mut writer = Writer {
            dir: dir.clone(),
            ty: plan.ty.clone(),
            max_bytes: exports.config.max_file_bytes,
            file: None,
            index: 0,
            done: Vec::new(),
        };
        let mut n: u64 = 0;
        let mut tick = 0u32;
        while let Some(v) = union.next()? {
            match deid {
                None => writer.line(&v.body)?,
                Some(d) => {
                    let mut r: serde_json::Value = serde_json::from_slice(&v.body)
                        .map_err(|e| super::io_error("read a stored resource", std::io::Error::other(e)))?;
                    if let Some(q) = d.deidentify(&mut r) {
                        k.add(q);
                    }
                    writer.line(r.to_string().as_bytes())?;
                }
            }
            n += 1;
            tick += 1;
            if tick == 1000 {
                tick = 0;
                if job.cancelled.load(Ordering::SeqCst) {
                    return Ok(None);
                }
                job.state.lock().progress =
                    format!("{} ({}/{} types): {} resources", plan.ty, i + 1, plans.len(), total + n);
            }
        }
        writer.close()?;
        total += n;
        outputs.extend(writer.done);
        if job.cancelled.load(Ordering::SeqCst) {
            return Ok(None);
        }
        job.state.lock().progress = format!("{} of {} types: {} resources", i + 1, plans.len(), total);
    }
    Ok(Some((outputs, k.k())))
}
