/**
 * The few DOM types the page scripts use, so that they type-check with Deno's own lib
 * (adding `lib: "dom"` to the repository's single `deno check` program clashes with Deno's
 * stream and global types elsewhere). Read from `globalThis` at run time.
 *
 * @module
 */

/** A 2-D canvas context (the members the page uses). */
export interface Ctx2d {
  /** Smoothing when scaling images. */
  imageSmoothingEnabled: boolean;
  /** Draw pixels. */
  putImageData(img: ImageDataLike, x: number, y: number): void;
  /** Draw part of another canvas, scaled. */
  drawImage(
    src: El,
    sx: number,
    sy: number,
    sw: number,
    sh: number,
    dx: number,
    dy: number,
    dw: number,
    dh: number,
  ): void;
  /** Clear a rectangle. */
  clearRect(x: number, y: number, w: number, h: number): void;
}

/** RGBA pixels. */
export interface ImageDataLike {
  /** Width. */
  readonly width: number;
  /** Height. */
  readonly height: number;
  /** RGBA bytes. */
  readonly data: Uint8ClampedArray;
}

/** A DOM element with the members the page uses (inputs, canvases, links, tables). */
export interface El {
  /** Text. */
  textContent: string | null;
  /** Class attribute. */
  className: string;
  /** Tooltip. */
  title: string;
  /** Input / progress value (a progress bar converts it to a number). */
  value: string;
  /** Progress maximum. */
  max: number;
  /** Button state. */
  disabled: boolean;
  /** Canvas size. */
  width: number;
  /** Canvas size. */
  height: number;
  /** Link target. */
  href: string;
  /** Link download name. */
  download: string;
  /** Chosen files of a file input. */
  readonly files: ArrayLike<File> | null;
  /** Class list. */
  readonly classList: { add(c: string): void; remove(c: string): void };
  /** Append children. */
  append(...children: El[]): void;
  /** Append one child. */
  appendChild(child: El): void;
  /** Replace all children. */
  replaceChildren(...children: El[]): void;
  /** First matching descendant. */
  querySelector(selector: string): El | null;
  /** Listen. */
  addEventListener(type: string, f: (ev: DomEvent) => void): void;
  /** Bounding box on screen. */
  getBoundingClientRect(): { left: number; top: number; width: number; height: number };
  /** Click it. */
  click(): void;
  /** Canvas context. */
  getContext(kind: "2d"): Ctx2d | null;
}

/** An event (mouse and drag members included). */
export interface DomEvent {
  /** Cancel the default action. */
  preventDefault(): void;
  /** Mouse position. */
  readonly clientX: number;
  /** Mouse position. */
  readonly clientY: number;
  /** Dropped data. */
  readonly dataTransfer?: { readonly files: ArrayLike<File> } | null;
  /** Error message (error events). */
  readonly message?: string;
}

/** The document (the members the page uses). */
export interface Doc {
  /** Element by id (the pages' ids all exist). */
  getElementById(id: string): El;
  /** A new element. */
  createElement(tag: string): El;
  /** The body. */
  readonly body: El;
}

/** The page's document. */
export const doc = (): Doc => (globalThis as unknown as { document: Doc }).document;

/** `new ImageData(rgba, width, height)`. */
export const imageData = (rgba: Uint8ClampedArray, width: number, height: number): ImageDataLike =>
  new (globalThis as unknown as {
    ImageData: new (d: Uint8ClampedArray, w: number, h: number) => ImageDataLike;
  }).ImageData(rgba, width, height);
