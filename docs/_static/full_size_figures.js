// Figures on this site are scaled to the page's width; a click opens the image at its full size.
document.addEventListener('DOMContentLoaded', () => {
  document.querySelectorAll('article img').forEach(img => {
    if (img.closest('a')) return;
    const link = document.createElement('a');
    link.href = img.getAttribute('src');
    link.className = 'full-size-figure';
    link.title = 'open the figure at full size';
    img.replaceWith(link);
    link.appendChild(img);
  });
});
