//! Fragmented MP4 (ISO-BMFF) for low-latency HLS: an init segment (`ftyp` + `moov` with an H.264
//! and an AAC track) and fragments (`moof` + `mdat`), each fragment one HLS part.
//!
//! Written here rather than by `mp4mux`'s fragmented mode: its fragments close on duration per track, not where
//! callcast wants a part to end (on a keyframe for a new segment, every third of a second otherwise), and GStreamer
//! 1.22 on Debian has no `cmafmux`. The boxes are the fixed-layout ones of ISO/IEC 14496-12 and -15; nothing here
//! knows of GStreamer: the caller hands over the codec configuration and the samples.

/// Video timescale: the MPEG 90 kHz clock.
pub const VIDEO_TIMESCALE: u32 = 90_000;

/// What the init segment says of the video: the `avcC` payload (h264parse's `codec_data` in `avc` format).
pub struct VideoTrack<'a> {
    pub width: u16,
    pub height: u16,
    pub avcc: &'a [u8],
}

/// What the init segment says of the audio: its AudioSpecificConfig (aacparse's `codec_data` in `raw` format).
pub struct AudioTrack<'a> {
    pub rate: u32,
    pub channels: u16,
    pub asc: &'a [u8],
}

pub const VIDEO_TRACK_ID: u32 = 1;
pub const AUDIO_TRACK_ID: u32 = 2;

/// One sample of a fragment, in its track's timescale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub data: Vec<u8>,
    pub duration: u32,
    /// Presentation minus decode time (0 without B-frames).
    pub composition_offset: i32,
    pub keyframe: bool,
}

/// One track's run in a fragment: its samples and the decode time of the first one.
pub struct Run<'a> {
    pub track_id: u32,
    pub base_decode_time: u64,
    pub samples: &'a [Sample],
}

fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(&(body.len() as u32 + 8).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
    out
}

/// A full box: version and flags before the body.
fn full(kind: &[u8; 4], version: u8, flags: u32, body: &[u8]) -> Vec<u8> {
    let mut head = ((u32::from(version) << 24) | (flags & 0x00ff_ffff))
        .to_be_bytes()
        .to_vec();
    head.extend_from_slice(body);
    boxed(kind, &head)
}

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

fn matrix() -> Vec<u8> {
    MATRIX.iter().flat_map(|v| v.to_be_bytes()).collect()
}

/// Major brand, minor version, compatible brands.
const FTYP: &[u8] = b"iso6\0\0\0\0iso6isomavc1mp41";

/// `ftyp` + `moov`: what a player needs before any fragment.
pub fn init_segment(video: &VideoTrack<'_>, audio: &AudioTrack<'_>) -> Vec<u8> {
    // No `cmfc` brand: a CMAF fragment carries one track, and each of these carries both.
    let ftyp = boxed(b"ftyp", FTYP);
    let mut mvhd = vec![0u8; 8]; // creation, modification
    mvhd.extend_from_slice(&1000u32.to_be_bytes()); // timescale
    mvhd.extend_from_slice(&0u32.to_be_bytes()); // duration: unknown (fragmented)
    mvhd.extend_from_slice(&0x0001_0000u32.to_be_bytes()); // rate 1.0
    mvhd.extend_from_slice(&0x0100u16.to_be_bytes()); // volume 1.0
    mvhd.extend_from_slice(&[0; 10]);
    mvhd.extend_from_slice(&matrix());
    mvhd.extend_from_slice(&[0; 24]);
    mvhd.extend_from_slice(&(AUDIO_TRACK_ID + 1).to_be_bytes()); // next track id
    let mvex = boxed(b"mvex", &concat(&[&trex(VIDEO_TRACK_ID), &trex(AUDIO_TRACK_ID)]));
    let moov = boxed(
        b"moov",
        &concat(&[
            &full(b"mvhd", 0, 0, &mvhd),
            &video_trak(video),
            &audio_trak(audio),
            &mvex,
        ]),
    );
    concat(&[&ftyp, &moov])
}

fn trex(track_id: u32) -> Vec<u8> {
    let body: Vec<u8> = [track_id, 1, 0, 0, 0].iter().flat_map(|v| v.to_be_bytes()).collect();
    full(b"trex", 0, 0, &body)
}

fn tkhd(track_id: u32, volume: u16, width: u16, height: u16) -> Vec<u8> {
    let mut body = vec![0u8; 8]; // creation, modification
    body.extend_from_slice(&track_id.to_be_bytes());
    body.extend_from_slice(&[0; 4]); // reserved
    body.extend_from_slice(&0u32.to_be_bytes()); // duration
    body.extend_from_slice(&[0; 8]); // reserved
    body.extend_from_slice(&[0; 4]); // layer, alternate group
    body.extend_from_slice(&volume.to_be_bytes());
    body.extend_from_slice(&[0; 2]);
    body.extend_from_slice(&matrix());
    body.extend_from_slice(&(u32::from(width) << 16).to_be_bytes());
    body.extend_from_slice(&(u32::from(height) << 16).to_be_bytes());
    // Flags: enabled, in movie.
    full(b"tkhd", 0, 3, &body)
}

fn mdia(timescale: u32, handler: &[u8; 4], name: &str, header: Vec<u8>, stsd_entry: Vec<u8>) -> Vec<u8> {
    let mut mdhd = vec![0u8; 8];
    mdhd.extend_from_slice(&timescale.to_be_bytes());
    mdhd.extend_from_slice(&0u32.to_be_bytes());
    mdhd.extend_from_slice(&0x55c4u16.to_be_bytes()); // language "und"
    mdhd.extend_from_slice(&[0; 2]);
    let mut hdlr = vec![0u8; 4];
    hdlr.extend_from_slice(handler);
    hdlr.extend_from_slice(&[0; 12]);
    hdlr.extend_from_slice(name.as_bytes());
    hdlr.push(0);
    let dref = full(
        b"dref",
        0,
        0,
        &concat(&[&1u32.to_be_bytes(), &full(b"url ", 0, 1, &[])]),
    );
    let mut stsd = 1u32.to_be_bytes().to_vec();
    stsd.extend_from_slice(&stsd_entry);
    let empty_table = 0u32.to_be_bytes();
    let stbl = boxed(
        b"stbl",
        &concat(&[
            &full(b"stsd", 0, 0, &stsd),
            &full(b"stts", 0, 0, &empty_table),
            &full(b"stsc", 0, 0, &empty_table),
            &full(b"stsz", 0, 0, &[0; 8]),
            &full(b"stco", 0, 0, &empty_table),
        ]),
    );
    let minf = boxed(b"minf", &concat(&[&header, &boxed(b"dinf", &dref), &stbl]));
    boxed(
        b"mdia",
        &concat(&[&full(b"mdhd", 0, 0, &mdhd), &full(b"hdlr", 0, 0, &hdlr), &minf]),
    )
}

fn video_trak(video: &VideoTrack<'_>) -> Vec<u8> {
    let mut avc1 = vec![0u8; 6];
    avc1.extend_from_slice(&1u16.to_be_bytes()); // data reference index
    avc1.extend_from_slice(&[0; 16]);
    avc1.extend_from_slice(&video.width.to_be_bytes());
    avc1.extend_from_slice(&video.height.to_be_bytes());
    avc1.extend_from_slice(&0x0048_0000u32.to_be_bytes()); // 72 dpi
    avc1.extend_from_slice(&0x0048_0000u32.to_be_bytes());
    avc1.extend_from_slice(&[0; 4]);
    avc1.extend_from_slice(&1u16.to_be_bytes()); // frame count
    avc1.extend_from_slice(&[0; 32]); // compressor name
    avc1.extend_from_slice(&0x0018u16.to_be_bytes()); // depth
    avc1.extend_from_slice(&(-1i16).to_be_bytes());
    avc1.extend_from_slice(&boxed(b"avcC", video.avcc));
    let vmhd = full(b"vmhd", 0, 1, &[0; 8]);
    let mdia = mdia(VIDEO_TIMESCALE, b"vide", "VideoHandler", vmhd, boxed(b"avc1", &avc1));
    boxed(
        b"trak",
        &concat(&[&tkhd(VIDEO_TRACK_ID, 0, video.width, video.height), &mdia]),
    )
}

/// An MPEG-4 descriptor (ISO/IEC 14496-1 §8.3.3): tag, length in the expandable size encoding (seven bits a
/// byte, most significant first, the top bit set on every byte but the last), body.
fn descriptor(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut size = vec![(body.len() & 0x7f) as u8];
    let mut rest = body.len() >> 7;
    while rest > 0 {
        size.insert(0, 0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    let mut out = vec![tag];
    out.extend_from_slice(&size);
    out.extend_from_slice(body);
    out
}

fn audio_trak(audio: &AudioTrack<'_>) -> Vec<u8> {
    let mut mp4a = vec![0u8; 6];
    mp4a.extend_from_slice(&1u16.to_be_bytes());
    mp4a.extend_from_slice(&[0; 8]);
    mp4a.extend_from_slice(&audio.channels.to_be_bytes());
    mp4a.extend_from_slice(&16u16.to_be_bytes()); // sample size
    mp4a.extend_from_slice(&[0; 4]);
    // 16.16 fixed point; rates above 65535 Hz do not fit, and AAC here is 48 kHz at most.
    mp4a.extend_from_slice(&(audio.rate.min(65535) << 16).to_be_bytes());
    let mut config = vec![0x40, 0x15]; // MPEG-4 audio; audio stream
    config.extend_from_slice(&[0; 3]); // buffer size
    config.extend_from_slice(&[0; 8]); // max and average bitrate: unknown
    config.extend_from_slice(&descriptor(5, audio.asc));
    let mut es = vec![0, 0, 0]; // ES id, flags
    es.extend_from_slice(&descriptor(4, &config));
    es.extend_from_slice(&descriptor(6, &[2]));
    mp4a.extend_from_slice(&full(b"esds", 0, 0, &descriptor(3, &es)));
    let smhd = full(b"smhd", 0, 0, &[0; 4]);
    let mdia = mdia(audio.rate, b"soun", "SoundHandler", smhd, boxed(b"mp4a", &mp4a));
    boxed(b"trak", &concat(&[&tkhd(AUDIO_TRACK_ID, 0x0100, 0, 0), &mdia]))
}

/// Sample flags: a sync sample depends on nothing; any other depends on others and is not a sync sample.
fn sample_flags(keyframe: bool) -> u32 {
    if keyframe {
        0x0200_0000
    } else {
        0x0101_0000
    }
}

/// One `moof` + `mdat` with the runs' samples (a run with no samples is left out). `sequence`: the fragment's
/// number, counting up across the whole output.
pub fn fragment(sequence: u32, runs: &[Run<'_>]) -> Vec<u8> {
    let runs: Vec<&Run<'_>> = runs.iter().filter(|r| !r.samples.is_empty()).collect();
    // Built twice: the second time with data offsets from the first `moof`'s size (the same both times).
    let build = |offsets: &[i32]| {
        let mut trafs = Vec::new();
        for (run, offset) in runs.iter().zip(offsets) {
            // default-base-is-moof: data offsets count from the start of the `moof`.
            let tfhd = full(b"tfhd", 0, 0x02_0000, &run.track_id.to_be_bytes());
            let tfdt = full(b"tfdt", 1, 0, &run.base_decode_time.to_be_bytes());
            let with_cts = run.track_id == VIDEO_TRACK_ID;
            // data offset, duration, size, flags (video), composition offset (video).
            let flags = 0x1 | 0x100 | 0x200 | if with_cts { 0x400 | 0x800 } else { 0 };
            let mut body = (run.samples.len() as u32).to_be_bytes().to_vec();
            body.extend_from_slice(&offset.to_be_bytes());
            for s in run.samples {
                body.extend_from_slice(&s.duration.to_be_bytes());
                body.extend_from_slice(&(s.data.len() as u32).to_be_bytes());
                if with_cts {
                    body.extend_from_slice(&sample_flags(s.keyframe).to_be_bytes());
                    body.extend_from_slice(&s.composition_offset.to_be_bytes());
                }
            }
            let trun = full(b"trun", 1, flags, &body);
            trafs.push(boxed(b"traf", &concat(&[&tfhd, &tfdt, &trun])));
        }
        let mfhd = full(b"mfhd", 0, 0, &sequence.to_be_bytes());
        let mut moof_body = mfhd;
        for traf in trafs {
            moof_body.extend_from_slice(&traf);
        }
        boxed(b"moof", &moof_body)
    };
    let moof_size = build(&vec![0; runs.len()]).len();
    let mut offsets = Vec::new();
    let mut at = moof_size + 8; // past the mdat header
    for run in &runs {
        offsets.push(at as i32);
        at += run.samples.iter().map(|s| s.data.len()).sum::<usize>();
    }
    let moof = build(&offsets);
    let mdat: Vec<u8> = runs
        .iter()
        .flat_map(|r| r.samples.iter().flat_map(|s| s.data.iter().copied()))
        .collect();
    concat(&[&moof, &boxed(b"mdat", &mdat)])
}

#[cfg(test)]
mod tests {
    use super::{descriptor, fragment, Run, Sample, AUDIO_TRACK_ID, FTYP, VIDEO_TRACK_ID};

    #[test]
    fn a_descriptor_longer_than_127_bytes_has_a_multi_byte_length_and_the_brands_claim_no_cmaf() {
        assert_eq!(descriptor(0x05, &[7; 3]), [0x05, 3, 7, 7, 7]);
        // 200 = 1 * 128 + 72; 20000 = 1 * 16384 + 28 * 128 + 32.
        assert_eq!(descriptor(0x04, &[0; 200])[..3], [0x04, 0x81, 72]);
        assert_eq!(descriptor(0x04, &[0; 200]).len(), 3 + 200);
        assert_eq!(descriptor(0x03, &[0; 20_000])[..4], [0x03, 0x81, 0x80 | 28, 32]);
        let brands: Vec<&[u8]> = FTYP[8..].chunks(4).collect();
        assert_eq!(brands, [&b"iso6"[..], b"isom", b"avc1", b"mp41"]);
    }

    /// The boxes at the top level of `bytes`: (type, size).
    fn top_level(bytes: &[u8]) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at + 8 <= bytes.len() {
            let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            out.push((String::from_utf8_lossy(&bytes[at + 4..at + 8]).into_owned(), size));
            at += size;
        }
        assert_eq!(at, bytes.len(), "boxes fill the buffer exactly");
        out
    }

    #[test]
    fn a_fragment_is_a_moof_whose_data_offsets_point_at_each_track_in_the_mdat() {
        let video = [
            Sample {
                data: vec![0xaa; 5],
                duration: 3000,
                composition_offset: 0,
                keyframe: true,
            },
            Sample {
                data: vec![0xbb; 3],
                duration: 3000,
                composition_offset: 0,
                keyframe: false,
            },
        ];
        let audio = [Sample {
            data: vec![0xcc; 4],
            duration: 1024,
            composition_offset: 0,
            keyframe: true,
        }];
        let bytes = fragment(
            7,
            &[
                Run {
                    track_id: VIDEO_TRACK_ID,
                    base_decode_time: 90_000,
                    samples: &video,
                },
                Run {
                    track_id: AUDIO_TRACK_ID,
                    base_decode_time: 48_000,
                    samples: &audio,
                },
            ],
        );
        let boxes = top_level(&bytes);
        assert_eq!(boxes.iter().map(|b| b.0.as_str()).collect::<Vec<_>>(), ["moof", "mdat"]);
        let moof_size = boxes[0].1;
        // mfhd's sequence number right after its header (moof 8 + mfhd size/type 8 + version/flags 4).
        assert_eq!(&bytes[20..24], &7u32.to_be_bytes());
        // The data offsets are the only i32 fields equal to these; find them after each "trun".
        let truns: Vec<usize> = bytes
            .windows(4)
            .enumerate()
            .filter(|(_, w)| w == b"trun")
            .map(|(i, _)| i)
            .collect();
        assert_eq!(truns.len(), 2);
        let offset_of = |trun: usize| i32::from_be_bytes(bytes[trun + 12..trun + 16].try_into().unwrap()) as usize;
        assert_eq!(offset_of(truns[0]), moof_size + 8);
        assert_eq!(&bytes[offset_of(truns[0])..offset_of(truns[0]) + 5], &[0xaa; 5]);
        assert_eq!(offset_of(truns[1]), moof_size + 8 + 8);
        assert_eq!(&bytes[offset_of(truns[1])..], &[0xcc; 4]);
        // An empty run is left out.
        let only_video = fragment(
            1,
            &[
                Run {
                    track_id: AUDIO_TRACK_ID,
                    base_decode_time: 0,
                    samples: &[],
                },
                Run {
                    track_id: VIDEO_TRACK_ID,
                    base_decode_time: 0,
                    samples: &video,
                },
            ],
        );
        assert_eq!(only_video.windows(4).filter(|w| w == b"traf").count(), 1);
    }
}
